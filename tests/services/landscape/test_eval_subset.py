import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from services.landscape.eval_subset import load_subset


def test_load_subset_stacks_the_chosen_samples():
    images = torch.arange(8 * 2 * 2, dtype=torch.float32).view(8, 1, 2, 2)
    labels = torch.arange(8)
    loaded_images, loaded_labels = load_subset(TensorDataset(images, labels), [1, 6], "cpu")
    assert torch.equal(loaded_images, images[[1, 6]])
    assert torch.equal(loaded_labels, torch.tensor([1, 6]))


def test_load_subset_of_bare_images_and_python_labels():
    class Pairs(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            return torch.full((2,), float(index)), index

    class Bare(Pairs):
        def __getitem__(self, index):
            return torch.full((2,), float(index))

    images, labels = load_subset(Pairs(), [3, 0], "cpu")
    assert labels.tolist() == [3, 0] and labels.dtype == torch.int64 and images[0].tolist() == [3.0, 3.0]
    (bare,) = load_subset(Bare(), [2], "cpu")
    assert bare.shape == (1, 2)
    with pytest.raises(ValueError, match="empty"):
        load_subset(Bare(), [], "cpu")
