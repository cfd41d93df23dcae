"""Metrics of the smoothed-explanations attack figures: cosd (target vs attacked map) and the image
metrics LPIPS (the real path with weights in torchvision's cache layout; unavailable without them),
1 - SSIM and L2 (declared proxies), each against an independent reference."""
import numpy as np
import pytest
import torch

from robex.errors import RobexError
from robex.metrics.base import MetricInputs
from robex.metrics.perceptual import LPIPS, L2Distance, SSIMDistance, torchvision_cache_file
from robex.metrics.similarity import CosineDistance


def test_cosd_is_one_minus_the_cosine_and_needs_a_target():
    torch.manual_seed(0)
    a, b = torch.rand(5, 6, 6), torch.rand(5, 6, 6)
    got = CosineDistance()(MetricInputs(h_clean=None, h_adv=b, h_target=a))
    fa, fb = a.reshape(5, -1).numpy(), b.reshape(5, -1).numpy()
    expected = 1 - (fa * fb).sum(1) / (np.linalg.norm(fa, axis=1) * np.linalg.norm(fb, axis=1))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-6)
    same = CosineDistance()(MetricInputs(h_clean=None, h_adv=a, h_target=a * 3))
    assert same.abs().max() < 1e-6  # scale does not matter
    b[1, 0, 0] = float("nan")
    assert torch.isnan(CosineDistance()(MetricInputs(h_clean=None, h_adv=b, h_target=a))[1])
    with pytest.raises(RobexError, match="target map"):
        CosineDistance()(MetricInputs(h_clean=a, h_adv=b))


def test_one_minus_ssim_and_l2_equal_skimage_and_numpy_on_colour_images():
    from skimage.metrics import structural_similarity

    torch.manual_seed(1)
    x = torch.rand(3, 3, 16, 16)
    xa = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    got = SSIMDistance()(MetricInputs(h_clean=None, x=x, x_adv=xa))
    for i in range(3):
        ref = structural_similarity(x[i].numpy().astype(np.float64), xa[i].numpy().astype(np.float64),
                                    channel_axis=0, data_range=1.0, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
        assert abs(float(got[i]) - (1 - ref)) < 1e-5
    l2 = L2Distance()(MetricInputs(h_clean=None, x=x, x_adv=xa))
    np.testing.assert_allclose(l2.numpy(), np.linalg.norm((xa - x).reshape(3, -1).numpy(), axis=1), rtol=1e-5)


def test_lpips_without_its_imagenet_weights_is_unavailable_never_a_number(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    m = LPIPS()
    assert m.unavailable and "alexnet" in m.unavailable and str(tmp_path) in m.unavailable
    with pytest.raises(RobexError, match="LPIPS unavailable"):
        m(MetricInputs(h_clean=None, x=torch.rand(1, 3, 32, 32), x_adv=torch.rand(1, 3, 32, 32)))
    with pytest.raises(RobexError, match="backbone_path=.* does not exist"):
        LPIPS(backbone_path=str(tmp_path / "nope.pth"))


def test_lpips_reads_torchvisions_cache_layout_and_equals_the_lpips_package(tmp_path, monkeypatch):
    """A locally saved random-weight AlexNet in torchvision's cache file: robex's LPIPS loads it (with
    weights_only) and equals the lpips package's own LPIPS on that same backbone."""
    import contextlib
    import io

    import lpips
    import torchvision

    torch.manual_seed(2)
    with contextlib.redirect_stdout(io.StringIO()):
        reference = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False).eval()
    alexnet = torchvision.models.alexnet()
    for k in range(1, 6):  # put lpips' random backbone into torchvision's AlexNet layout
        for name, module in getattr(reference.net, f"slice{k}").named_children():
            alexnet.features[int(name)].load_state_dict(module.state_dict())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    path = torchvision_cache_file("alex")
    assert path.name == "alexnet-owt-7be5be79.pth"
    path.parent.mkdir(parents=True)
    torch.save(alexnet.state_dict(), path)
    m = LPIPS()
    assert m.unavailable is None
    x = torch.rand(4, 3, 32, 32)
    xa = (x + 0.05 * torch.randn_like(x)).clamp(0, 1)
    got = m(MetricInputs(h_clean=None, x=x, x_adv=xa))
    with torch.no_grad():
        expected = reference(x * 2 - 1, xa * 2 - 1).flatten()
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    assert (m(MetricInputs(h_clean=None, x=x, x_adv=x)).abs() < 1e-6).all()
    assert (LPIPS(backbone_path=str(path))(MetricInputs(h_clean=None, x=x, x_adv=xa)) - got).abs().max() < 1e-6
