"""Security checks of issue 9 (scope 4), against the real servers where a server is involved.

(a) Tokens and passwords never reach logs, exceptions, manifests, cards or snapshots: a labelling
    round and a release run with known secrets, then every file written is scanned for them.
(b) Dataset names, versions and workspace paths cannot leave the workspace (``..``, absolute
    paths, symlinks).
(c) The local Label Studio serves local files from the workspace's media folder only.
(d) No unsafe deserialisation or eval/exec in the source tree (a static scan).
(e) The local servers listen on 127.0.0.1 only, unless configured otherwise.
"""

from __future__ import annotations

import ast
import logging
import secrets
import stat
import traceback
from pathlib import Path

import polars as pl
import pytest
import requests

from annotation.backends.base import BackendAuthError
from annotation.backends.labelstudio.client import LabelStudioBackend
from annotation.backends.labelstudio.server import LOGIN_FILE, LocalLabelStudio
from annotation.store import ProjectState
from corpusforge.workspace import Workspace, WorkspaceError
from releases.errors import InvalidReleaseSpecError
from releases.versions import list_versions, validate_dataset_name, validate_version
from tests.conftest import SAD_SAMPLE
from tests.corpusforge.test_cli_sad import cf

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- (a) secrets


def scan_for_secrets(roots: list[Path], secret_values: dict[str, str], *, allowed_names: tuple[str, ...] = ()) -> list[str]:
    """``path: secret name`` for every file under ``roots`` that contains one of the secrets.

    Parquet files are read and scanned as text (their pages are compressed); every other file as
    raw bytes. Files named in ``allowed_names`` (the server's own login file) are skipped."""
    found = []
    for root in roots:
        for path in sorted(p for p in Path(root).rglob("*") if p.is_file() and not p.is_symlink()):
            if path.name in allowed_names:
                continue
            data = path.read_bytes()
            if path.suffix == ".parquet":
                try:
                    df = pl.read_parquet(path)
                    data += str(df.to_dicts()).encode()
                except Exception:  # noqa: BLE001 - unreadable: the raw bytes are scanned anyway
                    pass
            found += [f"{path}: {name}" for name, value in secret_values.items() if value.encode() in data]
    return found


@pytest.mark.slow
def test_a_labelling_round_and_a_release_leave_no_secret_in_any_file(label_studio, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    known = {"token": label_studio.token, "password": label_studio.password, "secret_key": label_studio.login["secret_key"]}
    monkeypatch.setenv("CORPUSFORGE_LABEL_STUDIO_TOKEN", label_studio.token)
    ws = tmp_path / "ws"
    s = ["-w", str(ws), "--set", f"annotation.label_studio.url={label_studio.url}", "--set", "annotation.sad.annotators=['ann1','ann2','ann3']"]
    outputs = []

    def run(*args: str, check: bool = True):
        result = cf(*args, *s, cwd=tmp_path, check=check)
        outputs.append(result.stdout + result.stderr)
        return result

    cf("build", "sad", "--input", str(SAD_SAMPLE / "reddit"), "-w", str(ws), cwd=tmp_path)
    run("annotate", "push", "sad", "--sample-size", "10")
    run("annotate", "simulate", "sad", "--simulated", "--noise", "0.2")
    run("annotate", "pull", "sad")
    run("annotate", "merge", "sad")
    run("build", "sad", "--input", str(SAD_SAMPLE / "reddit"), "--labels", "latest")
    run("release", "sad", "--version", "0.2.0")
    assert (ws / "releases" / "sad" / "0.2.0" / "manifest.json").exists()

    # a wrong token: the command fails with a message naming where the token came from, never the token
    wrong = "wrong" + secrets.token_hex(18)
    known["wrong_token"] = wrong
    monkeypatch.setenv("CORPUSFORGE_LABEL_STUDIO_TOKEN", wrong)
    refused = run("annotate", "pull", "sad", check=False)
    assert refused.returncode != 0 and "CORPUSFORGE_LABEL_STUDIO_TOKEN" in refused.stdout + refused.stderr
    with pytest.raises(BackendAuthError) as info:
        LabelStudioBackend(label_studio.url, wrong)
    rendered = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert wrong not in rendered and "rejected the API token" in rendered

    leaks = scan_for_secrets([ws], known)
    leaks += scan_for_secrets([label_studio.data_dir], known, allowed_names=(LOGIN_FILE,))  # logs, server.json
    # the server's database holds its own credentials: not a file of ours; everything else is scanned
    leaks = [leak for leak in leaks if not leak.split(":")[0].endswith((".sqlite3", ".sqlite3-wal", ".sqlite3-shm"))]
    assert not leaks, leaks
    texts = "\n".join(outputs) + caplog.text
    assert not [name for name, value in known.items() if value in texts], "a secret in the command output or logs"

    # the login file holds them, readable by its owner only; the data dir (database, logs) is private too
    login = label_studio.data_dir / LOGIN_FILE
    assert stat.S_IMODE(login.stat().st_mode) == 0o600
    assert stat.S_IMODE(label_studio.data_dir.stat().st_mode) & 0o077 == 0, oct(label_studio.data_dir.stat().st_mode)


def test_secrets_print_masked():
    from corpusforge.secrets import get_secret

    secret = get_secret("label_studio_token", env={"CORPUSFORGE_LABEL_STUDIO_TOKEN": "s3cr3t-value"})
    assert secret is not None and secret.reveal() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])


@pytest.mark.slow
def test_argilla_rejects_a_wrong_key_without_printing_it_and_keeps_its_login_private(argilla):
    from annotation.backends.argilla.backend import ArgillaBackend
    from annotation.backends.argilla.server import LOGIN_FILE as ARGILLA_LOGIN

    wrong = "wrong" + secrets.token_urlsafe(24)
    with pytest.raises(BackendAuthError) as info:
        ArgillaBackend(argilla.url, wrong)
    rendered = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert wrong not in rendered and argilla.api_key not in rendered
    assert stat.S_IMODE((argilla.data_dir / ARGILLA_LOGIN).stat().st_mode) == 0o600
    known = {"api_key": argilla.api_key, "password": argilla.password, "wrong": wrong}
    logs = [p for p in argilla.data_dir.rglob("*.log")]
    leaks = [f"{p}: {n}" for p in logs for n, v in known.items() if v.encode() in p.read_bytes()]
    assert not leaks, leaks
    # (e) every socket of its processes listens on 127.0.0.1
    assert listening_addresses(argilla_pids(argilla)) <= {"127.0.0.1"}


# --------------------------------------------------------------------------- (b) paths


BAD_VERSIONS = ["../../x", "1.0.0/../../x", "/tmp/x", "..", "1.0.0/", "1.0.0\n", "", "1.0", "01.0.0", "1.0.0/x"]
BAD_NAMES = ["../x", "a/b", "..", "/etc", "sad/..", "Sad", "", ".hidden", "sad\n", "a\\b"]


@pytest.mark.parametrize("version", BAD_VERSIONS)
def test_a_version_that_is_not_semver_never_becomes_a_path(version, tmp_path):
    ws = Workspace.at(tmp_path / "ws")
    with pytest.raises(WorkspaceError, match="invalid version"):
        ws.release_dir("sad", version)
    with pytest.raises(InvalidReleaseSpecError, match="invalid version"):
        validate_version(version)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_a_dataset_name_with_a_path_in_it_is_refused_everywhere(name, tmp_path):
    ws = Workspace.at(tmp_path / "ws")
    for entry in (ws.stages, ws.validation, lambda n: ws.release_dir(n, "1.0.0")):
        with pytest.raises(WorkspaceError, match="invalid dataset name"):
            entry(name)
    with pytest.raises(InvalidReleaseSpecError, match="invalid dataset name"):
        validate_dataset_name(name)


def test_workspace_folders_that_are_symlinks_to_elsewhere_are_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "ws"
    root.mkdir()
    (root / "releases").symlink_to(outside, target_is_directory=True)
    (root / "sad").mkdir()
    (root / "sad" / "stages").symlink_to(outside, target_is_directory=True)
    (root / "annotation").symlink_to(outside, target_is_directory=True)
    ws = Workspace.at(root)
    for entry in (lambda: ws.release_dir("sad", "1.0.0"), lambda: ws.releases, lambda: ws.stages("sad"),
                  lambda: ws.annotation, lambda: ws.media):
        with pytest.raises(WorkspaceError, match="outside the workspace"):
            entry()
    assert ws.validation("sad") == root.resolve() / "sad" / "validation"  # a real folder is fine
    # a link inside the workspace that stays inside is fine too
    (root / "polyrefuse-real").mkdir()
    (root / "polyrefuse").symlink_to(root / "polyrefuse-real", target_is_directory=True)
    assert ws.stages("polyrefuse").name == "stages"


def test_a_symlinked_dataset_folder_of_releases_is_refused_by_the_writer(tmp_path):
    from releases.writer import write_release

    outside = tmp_path / "outside"
    outside.mkdir()
    releases_root = tmp_path / "releases"
    releases_root.mkdir()
    (releases_root / "sad").symlink_to(outside, target_is_directory=True)

    class Spec:  # only what write_release reads before the path check
        dataset, version = "sad", "1.0.0"

        def validate(self):
            return None

    with pytest.raises(InvalidReleaseSpecError, match="outside the releases folder"):
        write_release(Spec(), releases_root)  # type: ignore[arg-type]
    assert not any(outside.iterdir())
    # a symlinked version folder is not listed as a release
    (releases_root / "relaionet").mkdir()
    (releases_root / "relaionet" / "9.9.9").symlink_to(outside, target_is_directory=True)
    assert list_versions(releases_root, "relaionet") == []


def test_release_on_the_command_line_refuses_a_path_as_version(tmp_path):
    ws = tmp_path / "ws"
    for version in ("../../escape", "1.0.0/../../escape", str(tmp_path / "abs")):
        result = cf("release", "sad", "--version", version, "-w", str(ws), cwd=tmp_path, check=False)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert "invalid version" in result.stdout + result.stderr, result.stdout + result.stderr
    assert not (tmp_path / "escape").exists() and not (tmp_path / "abs").exists()
    assert not any(p.name == "escape" for p in tmp_path.rglob("escape"))


def test_snapshot_names_are_pull_stamps_only(tmp_path):
    state = ProjectState(tmp_path / "state")
    real = state.pulls / "20261126T101010.123456Z"
    real.mkdir(parents=True)
    (real / "summary.json").write_text("{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "summary.json").write_text("{}")
    (state.pulls / "20261126T111111.000000Z").symlink_to(outside, target_is_directory=True)  # newer, but a link
    (state.pulls / "zz-newest").mkdir()
    (state.pulls / "zz-newest" / "summary.json").write_text("{}")
    assert state.latest_snapshot() == real and state.snapshots() == [real]
    assert state.snapshot(real.name) == real
    for name in ("../../outside", "/tmp", "20261126T111111.000000Z", "zz-newest", "..", real.name + "/.."):
        with pytest.raises(ValueError, match="snapshot"):
            state.snapshot(name)


# --------------------------------------------------------------------------- (c) local files


@pytest.mark.slow
def test_the_local_server_serves_the_media_folder_and_nothing_else(tmp_path, monkeypatch):
    from corpusforge.config import load_settings
    from corpusforge.ops import relaionet_proofread as ops
    from tests.pipelines.relaionet.test_corrections import candidate_frame

    ws = tmp_path / "ws"
    settings = load_settings(None, ["annotation.relaionet.annotators=['anna','ben']"], workspace=ws)
    data_dir = Workspace.at(ws).annotation / "label-studio"
    # as `corpusforge annotate serve` starts it
    with LocalLabelStudio(data_dir, port=0, document_root=ops.document_root(settings)) as server:
        assert server.document_root == Workspace.at(ws).media
        monkeypatch.setenv("CORPUSFORGE_LABEL_STUDIO_TOKEN", server.token)
        settings = load_settings(None, ["annotation.relaionet.annotators=['anna','ben']", f"annotation.label_studio.url='{server.url}'"], workspace=ws)
        report, _, written = ops.push(settings, candidate_frame())
        assert written == report.created > 0
        image = sorted(ops.images_dir(settings).iterdir())[0]
        assert image.parent == Workspace.at(ws).media / "relaionet"
        secret_stage = ws / "relaionet" / "stages" / "notes.txt"
        secret_stage.parent.mkdir(parents=True)
        secret_stage.write_text("not for annotators")
        headers = {"Authorization": f"Token {server.token}"}

        def get(d: str) -> requests.Response:
            return requests.get(f"{server.url}/data/local-files/", params={"d": d}, headers=headers, timeout=30)

        served = get(f"relaionet/{image.name}")
        assert served.status_code == 200 and served.content == image.read_bytes()
        for escape in ("../label-studio/label_studio.sqlite3", f"../label-studio/{LOGIN_FILE}",
                       "relaionet/../../label-studio/label_studio.sqlite3", "../../relaionet/stages/notes.txt",
                       "../../../relaionet/stages/notes.txt", str(secret_stage), str(data_dir / LOGIN_FILE),
                       "%2e%2e/label-studio/label_studio.sqlite3", "relaionet/../../../../etc/passwd"):
            r = get(escape)
            assert r.status_code != 200 and b"not for annotators" not in r.content and b"SQLite" not in r.content, (escape, r.status_code)
            assert server.token.encode() not in r.content


# --------------------------------------------------------------------------- (d) static scan

SCANNED = ("pipelines", "annotation", "corpusforge", "releases", "validation", "experiments", "schemas")


def unsafe_calls(path: Path) -> list[str]:
    """``file:line: what`` for each unsafe deserialisation or eval/exec call in a Python file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []

    def kw(call: ast.Call, name: str):
        return next((k.value for k in call.keywords if k.arg == name), None)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve", "cloudpickle"):
                    found.append(f"{path}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in ("pickle", "dill", "marshal", "shelve", "cloudpickle"):
            found.append(f"{path}:{node.lineno}: from {node.module} import ...")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        dotted = ast.unparse(func) if isinstance(func, (ast.Attribute, ast.Name)) else ""
        if name in ("eval", "exec", "compile", "__import__"):
            found.append(f"{path}:{node.lineno}: {name}()")
        elif dotted.endswith(("pickle.load", "pickle.loads", "marshal.load", "marshal.loads", "joblib.load", "dill.load",
                              "dill.loads", "read_pickle", "yaml.unsafe_load", "yaml.full_load", "jsonpickle.decode")):
            found.append(f"{path}:{node.lineno}: {dotted}()")
        elif dotted.endswith("yaml.load") or dotted.endswith("yaml.load_all"):
            loader = kw(node, "Loader") or (node.args[1] if len(node.args) > 1 else None)
            if loader is None or not ast.unparse(loader).endswith(("SafeLoader", "CSafeLoader")):
                found.append(f"{path}:{node.lineno}: {dotted}() without Loader=SafeLoader")
        elif dotted.endswith("torch.load"):
            weights_only = kw(node, "weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(f"{path}:{node.lineno}: torch.load() without weights_only=True")
        elif dotted.endswith(("np.load", "numpy.load")):
            allow = kw(node, "allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append(f"{path}:{node.lineno}: {dotted}(allow_pickle=...)")
        elif kw(node, "trust_remote_code") is not None:
            value = kw(node, "trust_remote_code")
            if not (isinstance(value, ast.Constant) and value.value is False):
                found.append(f"{path}:{node.lineno}: trust_remote_code={ast.unparse(value)} (runs code shipped with a model)")
    return found


def test_no_unsafe_deserialisation_or_eval_in_the_source_tree():
    files = [p for d in SCANNED for p in sorted((REPO / d).rglob("*.py"))]
    assert len(files) > 100
    offenders = [hit for p in files for hit in unsafe_calls(p)]
    assert not offenders, "unsafe loading or eval/exec:\n" + "\n".join(offenders)


def test_the_static_scan_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nimport yaml, torch\n"
        "a = pickle.loads(b'')\nb = yaml.load(s)\nc = yaml.load(s, Loader=yaml.SafeLoader)\n"
        "d = torch.load(p)\ne = torch.load(p, weights_only=True)\nf = eval('1')\nm.eval()\n"
        "g = AutoModel.from_pretrained(p, trust_remote_code=True)\n"
    )
    hits = unsafe_calls(bad)
    assert [h.split(": ", 1)[1] for h in hits] == [
        "import pickle", "pickle.loads()", "yaml.load() without Loader=SafeLoader", "torch.load() without weights_only=True",
        "eval()", "trust_remote_code=True (runs code shipped with a model)",
    ], hits


# --------------------------------------------------------------------------- (e) listening addresses


def listening_addresses(pids: set[int]) -> set[str]:
    """Local addresses of the TCP sockets in LISTEN state that processes ``pids`` hold."""
    import psutil

    found = set()
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="tcp")
        except psutil.NoSuchProcess:
            continue
        found |= {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN}
    return found


def process_tree(pid: int) -> set[int]:
    import psutil

    root = psutil.Process(pid)
    return {pid, *(c.pid for c in root.children(recursive=True))}


def argilla_pids(server) -> set[int]:
    pids: set[int] = set()
    for process in getattr(server, "_processes", {}).values() if isinstance(getattr(server, "_processes", None), dict) else []:
        pids |= process_tree(process.pid)
    if not pids:  # whatever holds the server's ports
        import psutil

        ports = {server.port, getattr(server, "redis_port", None)}
        pids = {c.pid for c in psutil.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN and c.laddr.port in ports and c.pid}
    assert pids, "no process of the Argilla server found"
    return pids


@pytest.mark.slow
def test_the_local_label_studio_listens_on_loopback_only(label_studio):
    addresses = listening_addresses(process_tree(label_studio.pid))
    assert addresses == {"127.0.0.1"}, addresses


def test_the_listening_address_is_a_documented_setting(tmp_path):
    from corpusforge.config import load_settings

    settings = load_settings(None, [], workspace=tmp_path)
    assert settings.annotation.label_studio.host == "127.0.0.1"
    assert load_settings(None, ["annotation.label_studio.host='0.0.0.0'"], workspace=tmp_path).annotation.label_studio.host == "0.0.0.0"
    server = LocalLabelStudio(tmp_path / "ls", host="0.0.0.0")
    server.port = 8123
    assert server.url == "http://127.0.0.1:8123"  # listening everywhere, reached locally
    assert LocalLabelStudio(tmp_path / "ls").host == "127.0.0.1"
    assert "--host" in (REPO / "docs" / "annotation.md").read_text() and "annotation.label_studio.host" in (REPO / "docs" / "annotation.md").read_text()
    result = cf("annotate", "serve", "--help", cwd=tmp_path)
    assert "--host" in result.stdout
