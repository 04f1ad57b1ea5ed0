"""Bad indices and shapes raise clear errors that name the op, what was found and what was
expected, instead of a deep NumPy traceback."""

import numpy as np
import pytest

import zerograd.functions as F
from zerograd import Variable
from zerograd.errors import DTypeError, ShapeError

W = Variable(np.zeros((4, 3)))


# -- out-of-range indices ---------------------------------------------------------------------
def test_embed_id_out_of_range_names_the_found_and_valid_ranges():
    with pytest.raises(IndexError) as info:
        F.embed_id(np.array([[0, 7], [2, 1]]), W)
    message = str(info.value)
    assert "embed_id" in message and "[0, 7]" in message and "0..3" in message


def test_embed_id_rejects_negative_ids():
    with pytest.raises(IndexError, match=r"embed_id: indices range over \[-1, 2\]"):
        F.embed_id(np.array([-1, 2]), W)


def test_get_item_out_of_range():
    with pytest.raises(IndexError) as info:
        F.get_item(W, np.array([1, 9]))
    message = str(info.value)
    assert "get_item" in message and "[1, 9]" in message and "(4, 3)" in message


def test_get_item_out_of_range_on_another_axis():
    with pytest.raises(IndexError, match=r"get_item: .*axis 1 \(size 3\).*\[0, 3\]"):
        F.get_item(W, (slice(None), np.array([0, 3])))


def test_gather_take_scatter_add_one_hot_out_of_range():
    x = np.zeros((2, 3))
    with pytest.raises(IndexError, match=r"gather: indices range over \[0, 5\].*axis 1 has size 3"):
        F.gather(x, np.array([[0, 5]]), axis=1)
    with pytest.raises(IndexError, match=r"take: indices range over \[-7, 0\].*-6\.\.5"):
        F.take(x, np.array([0, -7]))
    with pytest.raises(IndexError, match=r"take: .*axis 0 has size 2"):
        F.take(x, np.array([2]), axis=0)
    with pytest.raises(IndexError, match="scatter_add"):
        F.scatter_add(x, np.array([[3]]), np.ones((1, 1)), axis=1)
    with pytest.raises(IndexError, match=r"one_hot: indices range over \[0, 3\].*0\.\.2"):
        F.one_hot(np.array([0, 3]), 3)


def test_negative_indices_inside_the_range_work_like_numpy():
    x = Variable(np.arange(6.0).reshape(2, 3))
    np.testing.assert_array_equal(F.take(x, np.array([-1])).data, [5.0])
    np.testing.assert_array_equal(F.gather(x, np.array([[-1], [0]]), axis=1).data, [[2], [3]])


# -- wrong index dtypes -----------------------------------------------------------------------
def test_float_indices_raise_dtype_errors():
    with pytest.raises(DTypeError, match="embed_id: ids x must be an integer array, got float64"):
        F.embed_id(np.array([0.0, 1.0]), W)
    with pytest.raises(DTypeError, match="gather"):
        F.gather(np.zeros((2, 2)), np.zeros((2, 2)), axis=0)
    with pytest.raises(DTypeError, match="one_hot"):
        F.one_hot(np.array([0.5]), 3)


# -- wrong shapes -----------------------------------------------------------------------------
def test_embed_id_needs_a_matrix():
    with pytest.raises(ShapeError, match=r"embed_id: W must be a \(vocabulary, dim\) matrix"):
        F.embed_id(np.array([0]), np.zeros((4, 3, 2)))


def test_gather_and_scatter_add_shape_errors():
    with pytest.raises(ShapeError, match="gather: indices must have as many dimensions as x"):
        F.gather(np.zeros((2, 3)), np.array([0, 1]), axis=1)
    with pytest.raises(ShapeError, match=r"scatter_add: updates .*\(2, 2\).*indices"):
        F.scatter_add(np.zeros((2, 3)), np.zeros((2, 1), int), np.ones((2, 2)), axis=1)
    with pytest.raises(ShapeError, match="scatter_add: axis 5 is out of range"):
        F.scatter_add(np.zeros((2, 3)), np.zeros((2, 1), int), np.ones((2, 1)), axis=5)


def test_one_hot_values_and_bad_class_count():
    y = F.one_hot(np.array([[2, 0]]), 3)
    assert y.shape == (1, 2, 3) and y.dtype == np.float32
    np.testing.assert_array_equal(y, [[[0, 0, 1], [1, 0, 0]]])
    assert F.one_hot(np.array([1]), 2, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError, match="num_classes must be positive"):
        F.one_hot(np.array([0]), 0)


def test_concat_stack_split_shape_errors_name_the_shapes():
    with pytest.raises(ShapeError, match=r"concat: .*float64 \(2, 3\), float64 \(3, 3\).*axis 0"):
        F.concat([np.zeros((2, 3)), np.zeros((3, 3))], axis=1)
    with pytest.raises(ShapeError, match="concat: every input must have the same number"):
        F.concat([np.zeros((2, 3)), np.zeros(3)])
    with pytest.raises(ShapeError, match="concat: needs at least one input"):
        F.concat([])
    with pytest.raises(ShapeError, match="stack: every input must have the same shape"):
        F.stack([np.zeros(2), np.zeros(3)])
    with pytest.raises(ShapeError, match="split: axis 0 of x .* length 5.* 2 equal pieces"):
        F.split(np.zeros(5), 2)
    with pytest.raises(ShapeError, match="split: axis 3 is out of range"):
        F.split(np.zeros((2, 2)), 2, axis=3)


def test_other_shape_op_errors():
    with pytest.raises(ShapeError, match="squeeze: axis 1 of x .* has size 3"):
        F.squeeze(np.zeros((1, 3)), axis=1)
    with pytest.raises(ShapeError, match="pad: pad_width must be non-negative"):
        F.pad(np.zeros(3), -1)
    with pytest.raises(ShapeError, match="pad: pad_width .* does not fit"):
        F.pad(np.zeros((2, 2)), ((1, 1), (1, 1), (1, 1)))
    with pytest.raises(ValueError, match="pad: mode 'linear_ramp' is not supported"):
        F.pad(np.zeros(3), 1, mode="linear_ramp")
    with pytest.raises(ShapeError, match="repeat: repeats must be a non-negative int"):
        F.repeat(np.zeros(3), -1)
    with pytest.raises(ShapeError, match="repeat: 2 repeat counts for axis 0 of length 3"):
        F.repeat(np.zeros(3), [1, 2], axis=0)
    with pytest.raises(ShapeError, match="expand_dims: axis 3 is out of range"):
        F.expand_dims(np.zeros((2,)), 3)
    with pytest.raises(ShapeError, match="moveaxis"):
        F.moveaxis(np.zeros((2, 3)), (0, 1), 0)


def test_linear_algebra_shape_errors():
    with pytest.raises(ShapeError, match=r"linear: x float64 \(2, 3\) and W float64 \(4, 5\)"):
        F.linear(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(ShapeError, match=r"linear: b float64 \(3,\) does not broadcast"):
        F.linear(np.zeros((2, 3)), np.zeros((3, 5)), np.zeros(3))
    with pytest.raises(ShapeError, match="tensordot: a axis 1 .* paired with b axis 0"):
        F.tensordot(np.zeros((2, 3)), np.zeros((4, 2)), axes=1)
    with pytest.raises(ShapeError, match=r"einsum: term 'jk' does not fit .* shape \(3,\)"):
        F.einsum("ij,jk->ik", np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ShapeError, match="Einsum"):  # NumPy's own message, named and wrapped
        F.einsum("ij,jk->ik", np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="einsum: output 'z' repeats a label or uses one"):
        F.einsum("ij->z", np.zeros((2, 3)))
    with pytest.raises(ValueError, match="einsum: 'ij,jk' names 2 operand"):
        F.einsum("ij,jk", np.zeros((2, 3)))
