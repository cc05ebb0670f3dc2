import pytest
import torch
import torch.distributed as dist

from services.pretrain.losses.dino_loss import DINOLoss

torch.set_num_threads(1)


def reference_loss(student, teacher, center, ncrops, temp, student_temp=0.1):
    """DINO's loss and new centre, computed per sample and per pair in float64."""
    student, teacher, center = student.double(), teacher.double(), center.double()
    batch = teacher.shape[0] // 2
    total, pairs = 0.0, 0
    for iq in range(2):
        for v in range(ncrops):
            if v == iq:
                continue
            per_sample = []
            for b in range(batch):
                t = (teacher[iq * batch + b] - center[0]) / temp
                p_t = torch.exp(t - t.max()) / torch.exp(t - t.max()).sum()
                s = student[v * batch + b] / student_temp
                log_p_s = s - torch.logsumexp(s, dim=0)
                per_sample.append(float(-(p_t * log_p_s).sum()))
            total += sum(per_sample) / batch
            pairs += 1
    new_center = 0.9 * center + 0.1 * teacher.mean(dim=0, keepdim=True)
    return total / pairs, new_center


@pytest.mark.parametrize("batch,out_dim,ncrops,epoch", [(1, 4, 2, 0), (3, 7, 4, 1), (2, 16, 10, 3), (4, 9, 6, 9)])
def test_dino_loss_matches_reference(batch, out_dim, ncrops, epoch):
    torch.manual_seed(batch * 100 + ncrops)
    loss_fn = DINOLoss(out_dim, ncrops, warmup_teacher_temp=0.04, teacher_temp=0.07,
                       warmup_teacher_temp_epochs=4, nepochs=10)
    loss_fn.center = torch.randn(1, out_dim) * 0.1
    student = torch.randn(batch * ncrops, out_dim)
    teacher = torch.randn(batch * 2, out_dim)
    temp = 0.04 + 0.03 * epoch / 3 if epoch < 4 else 0.07
    expected_loss, expected_center = reference_loss(student, teacher, loss_fn.center.clone(), ncrops, temp)

    loss = loss_fn(student, teacher, epoch)

    assert loss_fn.teacher_temp(epoch) == pytest.approx(temp)
    assert float(loss) == pytest.approx(expected_loss, rel=1e-5)
    torch.testing.assert_close(loss_fn.center.double(), expected_center, rtol=1e-6, atol=1e-7)


def test_dino_loss_uses_old_center_then_updates_it():
    torch.manual_seed(0)
    loss_fn = DINOLoss(5, 3, 0.04, 0.04, 0, 3)
    student, teacher = torch.randn(6, 5), torch.randn(4, 5) + 2.0
    first = float(loss_fn(student, teacher, 0))
    expected_second, _ = reference_loss(student, teacher, loss_fn.center.clone(), 3, 0.04)
    second = float(loss_fn(student, teacher, 0))
    assert second == pytest.approx(expected_second, rel=1e-5)
    assert first != pytest.approx(second)


def test_dino_loss_gradient_reaches_student_only():
    loss_fn = DINOLoss(6, 4, 0.04, 0.04, 0, 1)
    student = torch.randn(8, 6, requires_grad=True)
    teacher = torch.randn(4, 6, requires_grad=True)
    loss_fn(student, teacher, 0).backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    assert teacher.grad is None


def test_dino_loss_rejects_uneven_crops():
    loss_fn = DINOLoss(4, 3, 0.04, 0.04, 0, 1)
    with pytest.raises(ValueError, match="3 crops"):
        loss_fn(torch.randn(7, 4), torch.randn(4, 4), 0)
    with pytest.raises(ValueError, match="global"):
        DINOLoss(4, 1, 0.04, 0.04, 0, 1)


def test_dino_loss_same_result_inside_a_process_group(tmp_path):
    torch.manual_seed(1)
    student, teacher = torch.randn(9, 8), torch.randn(6, 8)
    plain = DINOLoss(8, 3, 0.04, 0.04, 0, 1)
    expected = float(plain(student, teacher, 0))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        grouped = DINOLoss(8, 3, 0.04, 0.04, 0, 1)
        assert float(grouped(student, teacher, 0)) == pytest.approx(expected)
        torch.testing.assert_close(grouped.center, plain.center)
    finally:
        dist.destroy_process_group()
