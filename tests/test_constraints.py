"""The two environments install pinned versions: every line of the constraints files is an exact
`name==version`, the install scripts pass them to pip, and Label Studio's pin is the version its
install script names (a new release of an uncapped dependency cannot change a fresh clone)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.+!_-]+$")


def pins(name: str) -> dict[str, str]:
    lines = [line.strip() for line in (ROOT / "constraints" / name).read_text().splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    loose = [line for line in entries if not PIN.match(line)]
    assert not loose, f"constraints/{name}: not an exact pin: {loose}"
    return {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in entries}


def test_each_environment_installs_with_its_constraints():
    assert "-c constraints/dev.txt" in (ROOT / "scripts" / "setup.sh").read_text()
    assert "-c constraints/label-studio.txt" in (ROOT / "scripts" / "install_label_studio.sh").read_text()


def test_label_studio_pin_matches_its_install_script():
    script = (ROOT / "scripts" / "install_label_studio.sh").read_text()
    named = set(re.findall(r'"label-studio==([0-9.]+)"', script))
    ls = pins("label-studio.txt")
    assert named == {ls["label-studio"]}
    assert int(ls["sentry-sdk"].split(".")[0]) < 3  # 3.0 stops Label Studio 1.23.2 from starting


def test_dev_pins_admit_the_project_and_the_local_torch():
    dev = pins("dev.txt")
    assert dev["torch"] == "2.14.1" and dev["torchvision"] == "0.29.1"  # the wheels on this machine's disk
    assert "al-imagenet" not in dev  # the project itself is installed editable, never pinned
    for needed in ("dvc", "timm", "numpy", "polars", "pyarrow", "typer", "pytest", "mkdocs-material"):
        assert needed in dev, needed
