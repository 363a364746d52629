"""RISE against a PyTorch port of the paper's code (Petsiuk et al., ``explanations.py``:
``RISE.generate_masks`` and ``RISE.forward``), written here, float64, random weights with
random BatchNorm statistics, the same masks on both sides.

The paper's masks come from numpy's global generator; here its two draws per mask (the
binary grid and the shift) are made once and handed to both: to the port's
``generate_masks`` loop (scikit-image ``resize``, ``order=1``, ``mode="reflect"``, no
anti-aliasing, on a float64 grid — the paper's float32 grid rounds the masks to float32)
and to :func:`jaxviz.attribution.rise.masks_from`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.transform import resize

import jaxviz
from jaxviz.attribution.rise import masks_from
from parity_tests import helpers as h

pytestmark = pytest.mark.float64_only


def _paper_masks(grids, shifts, input_size):
    """``RISE.generate_masks`` given its grids (N, s, s) and shifts (N, 2)."""
    s = grids.shape[-1]
    cell_size = np.ceil(np.array(input_size) / s)
    up_size = ((s + 1) * cell_size).astype(int)
    masks = np.empty((len(grids), *input_size))
    for i, (grid, (x, y)) in enumerate(zip(grids, shifts)):
        masks[i] = resize(grid, up_size, order=1, mode="reflect", anti_aliasing=False)[
            x:x + input_size[0], y:y + input_size[1]]
    return masks


def _paper_saliency(tm, img, masks, p1, gpu_batch):
    """``RISE.forward`` for a (1, 3, H, W) image, the model followed by a softmax: every
    class's map, (classes, H, W)."""
    n = len(masks)
    masks_t = torch.from_numpy(masks)[:, None]
    stack = torch.mul(masks_t, img)
    with torch.no_grad():
        p = torch.cat([torch.softmax(tm(stack[i:min(i + gpu_batch, n)]), dim=1) for i in range(0, n, gpu_batch)])
    sal = torch.matmul(p.transpose(0, 1), masks_t.reshape(n, -1))
    return (sal.reshape(p.shape[1], *masks.shape[1:]) / n / p1).numpy()


@pytest.mark.parametrize("arch", ["squeezenet1_1", "resnet18"])
def test_rise_equals_the_papers_code_with_the_same_masks(arch):
    model, tm, x, target = h.random_case(arch)
    rng = np.random.default_rng(11)
    n_masks, s, p1 = 24, 7, 0.5
    size = x.shape[1:3]
    cells = np.ceil(np.array(size) / s).astype(int)
    grids = (rng.random((n_masks, s, s)) < p1).astype(np.float64)
    shifts = np.stack([rng.integers(0, cells[0], n_masks), rng.integers(0, cells[1], n_masks)], 1)
    paper = _paper_masks(grids, shifts, size)
    with h.precision("float64"):
        ours_masks = np.asarray(masks_from(grids, shifts, *size))
        h.assert_close(ours_masks, paper, 1e-12, "masks")
        ours = np.asarray(jaxviz.rise(model, x, target, masks=paper, p=p1, masks_per_eval=5))
    theirs = np.stack([_paper_saliency(tm, h.nchw(x[i:i + 1]), paper, p1, gpu_batch=10)[target[i]]
                       for i in range(len(x))])
    h.assert_close(ours, theirs, h.ATTR_TOL["float64"], arch)
    assert np.abs(theirs).max() > 0 and paper.min() < 0.5 < paper.max()
