# Book steps 59 and 60 (two epochs each): seeded recurrent training on SinCurve.
import dezero
import dezero.functions as F
import dezero.layers as L
from dezero import Model

train_set = dezero.datasets.SinCurve(train=True)
seqlen = len(train_set)


class SimpleRNN(Model):
    def __init__(self, hidden_size, out_size):
        super().__init__()
        self.rnn = L.RNN(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self):
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))


model = SimpleRNN(100, 1)
optimizer = dezero.optimizers.Adam().setup(model)
for epoch in range(2):
    model.reset_state()
    loss, count = 0, 0
    for x, t in train_set:
        x = x.reshape(1, 1)
        y = model(x)
        loss += F.mean_squared_error(y, t)
        count += 1
        if count % 30 == 0 or count == seqlen:
            model.cleargrads()
            loss.backward()
            loss.unchain_backward()
            optimizer.update()
    print("| epoch %d | loss %f" % (epoch + 1, float(loss.data) / count))


class BetterRNN(Model):
    def __init__(self, hidden_size, out_size):
        super().__init__()
        self.rnn = L.LSTM(hidden_size)
        self.fc = L.Linear(out_size)

    def reset_state(self):
        self.rnn.reset_state()

    def forward(self, x):
        return self.fc(self.rnn(x))


loader = dezero.SeqDataLoader(train_set, batch_size=30)
model = BetterRNN(100, 1)
optimizer = dezero.optimizers.Adam().setup(model)
for epoch in range(2):
    model.reset_state()
    loss, count = 0, 0
    for x, t in loader:
        y = model(x)
        loss += F.mean_squared_error(y, t)
        count += 1
        if count % 30 == 0 or count == seqlen:
            model.cleargrads()
            loss.backward()
            loss.unchain_backward()
            optimizer.update()
    print("| epoch %d | loss %f" % (epoch + 1, float(loss.data) / count))
