"""`keras.optimizers`: optimizers built without parameters, as Keras builds them; `compile` binds
them to the model's parameters (`build`). They run lamina's SGD and Adam (PyTorch's update rules;
Adam's epsilon is added to sqrt(v_hat), where Keras adds it to sqrt(v) before the bias
correction of the step size: the two differ only when v is as small as epsilon)."""
from .. import optim
from ..parameter import Parameter


class SGD:
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None):
        self.learning_rate, self.momentum, self.nesterov = learning_rate, momentum, nesterov
        self.weight_decay = weight_decay or 0.0
        optim.SGD([Parameter([0.0])], lr=learning_rate, momentum=momentum, nesterov=nesterov,
                  weight_decay=self.weight_decay)  # the same checks, now

    def build(self, params):
        return optim.SGD(params, lr=self.learning_rate, momentum=self.momentum, nesterov=self.nesterov,
                         weight_decay=self.weight_decay)


class Adam:
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None):
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.weight_decay = weight_decay or 0.0
        self.build([Parameter([0.0])])  # the same checks, now

    def build(self, params):
        return optim.Adam(params, lr=self.learning_rate, betas=(self.beta_1, self.beta_2), eps=self.epsilon,
                          weight_decay=self.weight_decay)


__all__ = ["SGD", "Adam"]
