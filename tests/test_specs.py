"""Model specs: the shipped TOML files, did-you-mean, and that they ship in the wheel."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import bayescale as bs
from bayescale.laws.specs import list_models, load_model, models_dir

REPO = Path(__file__).resolve().parents[1]
REQUIRED = {
    "chinchilla_hoffmann2022",
    "chinchilla_besiroglu2024",
    "kaplan2020_n",
    "kaplan2020_nd",
    "gadre2024_overtrained",
    "bnsl_caballero2022",
    "gadre2024_downstream",
}


def test_required_specs_ship_and_load():
    assert REQUIRED <= set(list_models())
    for name in REQUIRED:
        spec = load_model(name)
        assert spec.name == name
        assert spec.citation, f"{name} has no citation"
        assert spec.likelihood in ("student_t", "normal")


def test_spec_contents_are_the_papers_choices():
    assert load_model("chinchilla_besiroglu2024").likelihood == "student_t"
    assert load_model("chinchilla_hoffmann2022").likelihood == "normal"
    assert load_model("gadre2024_downstream").downstream is True
    assert load_model("kaplan2020_n").law.reported_names == ("N_c", "alpha_N")
    bnsl = load_model("bnsl_caballero2022").law
    assert dict(bnsl.options) == {"k": 1, "x": "compute"}
    assert str(load_model("gadre2024_overtrained").priors["eta"]).startswith("TruncatedNormal(")


def test_unknown_spec_suggests_the_closest_name():
    with pytest.raises(
        ValueError,
        match="unknown model spec 'chinchilla_besiroglu'; did you mean 'chinchilla_besiroglu2024'\\? Known specs: ",
    ):
        load_model("chinchilla_besiroglu")


def test_spec_from_path_and_its_errors(tmp_path):
    good = tmp_path / "mine.toml"
    good.write_text(
        'law = "chinchilla"\nlikelihood = "normal"\n[priors]\nalpha = "Uniform(low=0, high=1)"\n'
    )
    spec = load_model(good)
    assert spec.name == "mine" and str(spec.priors["alpha"]) == "Uniform(low=0, high=1)"

    typo = tmp_path / "typo.toml"
    typo.write_text('law = "chinchilla"\n[priors]\nalpah = "Uniform(low=0, high=1)"\n')
    with pytest.raises(
        ValueError, match="law 'chinchilla' has no parameter 'alpah'; did you mean 'alpha'\\?"
    ):
        load_model(typo)

    extra = tmp_path / "extra.toml"
    extra.write_text('law = "chinchilla"\nlikelihod = "normal"\n')
    with pytest.raises(ValueError, match="unknown key 'likelihod'"):
        load_model(extra)

    broken = tmp_path / "broken.toml"
    broken.write_text('law = "chinchilla\n')
    with pytest.raises(ValueError, match="cannot read model spec"):
        load_model(broken)

    with pytest.raises(ValueError, match=r"model spec file .*missing\.toml' not found"):
        load_model(tmp_path / "missing.toml")


def test_code_in_a_spec_is_never_evaluated(tmp_path):
    evil = tmp_path / "evil.toml"
    evil.write_text(
        'law = "chinchilla"\n[priors]\nalpha = "Normal(mu=__import__(\'os\').getpid(), sigma=1)"\n'
    )
    with pytest.raises(ValueError, match="cannot read prior argument"):
        load_model(evil)


def test_prior_overrides_reach_the_model_and_typos_list_valid_names():
    from bayescale.inference.fitting import resolve_spec
    from bayescale.model import build_model

    runs = bs.read_runs(bs.simulate_ladder(seed=0), params="params", tokens="tokens", loss="loss")
    spec = resolve_spec("chinchilla").with_(priors={"alpha": "Uniform(low=0.1, high=0.9)"})
    model = build_model(spec, runs)
    assert str(model.priors["alpha"]) == "Uniform(low=0.1, high=0.9)"
    m = round(float(runs.loss.min()), 6)
    assert model.priors["E"] == bs.Prior(
        "TruncatedNormal",
        {"mu": round(0.55 * m, 6), "sigma": round(0.3 * m, 6), "low": 0.0, "high": m},
    )
    bad = resolve_spec("chinchilla").with_(priors={"alhpa": "Uniform(low=0.1, high=0.9)"})
    with pytest.raises(
        ValueError,
        match="no parameter 'alhpa' to put a prior on; did you mean 'alpha'\\? Valid names: ",
    ):
        build_model(bad, runs)


@pytest.mark.slow
def test_specs_ship_inside_the_built_wheel(tmp_path):
    """Build the wheel, and load a spec from the installed (unpacked) copy, not the checkout."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
    )
    wheel = next(tmp_path.glob("bayescale-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        zf.extractall(tmp_path / "site")
    for name in REQUIRED:
        assert f"bayescale/models/{name}.toml" in names
    code = (
        "import bayescale.laws.specs as s; spec = s.load_model('gadre2024_overtrained'); "
        "print(spec.path); print(s.models_dir())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={
            "PYTHONPATH": str(tmp_path / "site"),
            "PATH": "/usr/bin:/bin",
            "BAYESCALE_CACHE_DIR": "off",
            "HOME": str(tmp_path),
        },
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    site = str((tmp_path / "site").resolve())
    assert out[0].startswith(site) and out[1].startswith(site)


def test_checkout_uses_the_repo_models_folder():
    """In a checkout (editable install) the specs are read from the top-level models/ folder."""
    assert not (REPO / "bayescale" / "models").exists()
    assert models_dir().resolve() == (REPO / "models").resolve()
