import pytest

from services.pretrain.data.augmentation import local_crop_size


@pytest.mark.parametrize("global_size,patch,requested,expected", [(224, 16, None, 96), (16, 4, None, 8),
                                                                   (32, 1, None, 14), (32, 4, 12, 12)])
def test_local_crop_size(global_size, patch, requested, expected):
    assert local_crop_size(global_size, patch, requested) == expected
