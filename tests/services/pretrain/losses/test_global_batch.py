import torch

from services.pretrain.losses.global_batch import own_columns


def test_own_columns_mark_each_anchors_column_of_the_global_batch():
    # rank 1 of 2 with 2 samples: its anchors are view v of global samples 2 and 3
    mask = own_columns(2, 2, 4, 2, torch.device("cpu"))
    assert mask.shape == (4, 8) and int(mask.sum()) == 4
    assert [int(row.nonzero()) for row in mask] == [2, 3, 6, 7]
