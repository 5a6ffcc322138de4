"""Platform detection on this very host, and the identity of its Platform node."""

import os
import platform as pyplatform
import shutil

import pytest

from ckg.run.platform import detect, platform_node, platform_uid


def test_detect_describes_this_host():
    fp = detect()
    assert fp["cores"] == os.cpu_count()
    assert fp["memory_bytes"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert fp["kernel"] == pyplatform.release()
    assert fp["python"] == pyplatform.python_version()
    assert any(p.startswith("numpy==") for p in fp["packages"])
    assert fp["cpu_model"]
    for value in fp.values():
        assert isinstance(value, (str, int)) or all(isinstance(v, str) for v in value)


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="host has a GPU")
def test_detect_finds_no_gpu_without_nvidia_smi():
    assert detect()["accelerators"] == []


def test_platform_uid_is_stable_and_changes_with_the_software():
    fp = detect()
    assert platform_uid(fp) == platform_uid(dict(reversed(list(fp.items()))))
    assert platform_uid(fp) != platform_uid({**fp, "python": "2.7.18"})
    node = platform_node(fp)
    assert (node.label, node.key) == ("Platform", platform_uid(fp))
    assert node.props["cores"] == fp["cores"]


def test_detect_cached_answers_from_home_until_the_packages_change(tmp_path, monkeypatch):
    from ckg.run import platform as plat

    first = plat.detect_cached(tmp_path)
    assert first == detect() and (tmp_path / plat.CACHE).is_file()

    def no_detection():
        raise AssertionError("detected again although nothing changed")

    monkeypatch.setattr(plat, "detect", no_detection)
    assert plat.detect_cached(tmp_path) == first
    # a new package folder on sys.path (an install) invalidates the saved fingerprint
    (tmp_path / "site").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(plat, "detect", lambda: {**first, "packages": ["torch==9"]})
    assert plat.detect_cached(tmp_path)["packages"] == ["torch==9"]
