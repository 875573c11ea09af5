import math

import torch

from demo.dpo import dpo_loss
from demo.rewards import concise, positive


def test_dpo_loss_is_log2_when_policy_equals_reference():
    zeros = torch.zeros(4)
    assert math.isclose(dpo_loss(zeros, zeros, zeros, zeros, beta=0.1).item(), math.log(2), rel_tol=1e-6)


def test_dpo_loss_falls_as_the_chosen_answer_gains_over_the_rejected():
    reference = torch.tensor([-10.0])
    losses = [
        dpo_loss(torch.tensor([-10.0 + d]), torch.tensor([-10.0 - d]), reference, reference, beta=0.5).item()
        for d in (0.0, 1.0, 2.0)
    ]
    assert losses[0] > losses[1] > losses[2]
    # -log sigmoid(beta * margin) with margin 2d = 4, beta 0.5
    assert math.isclose(losses[2], -math.log(1 / (1 + math.exp(-2.0))), rel_tol=1e-6)


def test_dpo_gradient_raises_chosen_and_lowers_rejected():
    chosen = torch.tensor([-5.0], requires_grad=True)
    rejected = torch.tensor([-5.0], requires_grad=True)
    dpo_loss(chosen, rejected, torch.tensor([-5.0]), torch.tensor([-5.0]), beta=0.1).backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()


def test_rewards():
    assert (
        positive("What a wonderful, lovely day") > 0.5 > positive("a day") > -0.5 > positive("awful, terrible, hateful")
    )
    assert concise("") == 0 and concise("one two three") == -3 < concise("one")
