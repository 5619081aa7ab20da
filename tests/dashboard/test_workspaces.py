"""Workspaces (dashboard/workspaces): the versioned document, the database, share tokens,
undo history, the controls an opened document sets, and refusal of bad session files."""
import base64
import copy
import multiprocessing
import os
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from dashboard import ids
from dashboard.stores import account
from dashboard.stores import exchange as ex
from dashboard.stores import liquidation as liq
from dashboard.stores import session as state
from dashboard.workspaces import controls, history, payload, store
from engine.margin import default_params, params_to_dict
from tests.conftest import clear_dash_state, new_app

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS_CSV = ("account,collateral,instrument,quantity,entry_price\n"
                "a1,50000,BTC-PERPETUAL,1.5,\n"
                "a1,50000,BTC-25DEC26-95000-C,-3,\n"
                "a2,20000,ETH-PERPETUAL,-10,\n")


@pytest.fixture(scope="module")
def edited_doc() -> dict:
    """A document where every part differs from its default (each through the stores' own
    transitions, as the pages would write them)."""
    doc = payload.default_payload()
    book, market, settings_ = doc["book"], doc["market"], doc["settings"]
    book = state.delete_positions(book, market, settings_, ["2", "5"]).data
    book = state.edit_positions(book, market, settings_, [{"rowId": "1", "colId": "quantity", "value": -3.5}]).data
    market = state.edit_market(market, book, settings_, "underlyings",
                               [{"rowId": "BTC", "colId": "spot", "value": 91234.5}]).data
    settings_ = state.settings_from_controls(30, 21, 20, 7, "0, 2, 14", book, market).data
    acct = account.set_collateral(doc["account"], book, market, "1,500,000").data
    acct = account.select_model(acct, book, market, "span").data
    acct = account.set_param(acct, book, market, "risk_based", "vol_shock.vol_range_up", 0.5).data
    shown = {f.name: f.shown_default for f in liq.FIELDS}
    shown["cost.impact_k"] = 1.7
    params = liq.params_from_controls(shown, "mainnet").data
    stress = liq.stress_from_controls("custom", -12, 750000).data
    path = liq.read_path("data:text/csv;base64," + base64.b64encode(b"hours,spot_shock\n0,0\n6,-0.1\n12,-0.25\n")
                         .decode(), "crash.csv").data
    ex_settings = ex.settings_from_controls(2000, 7, -20, 50, 2.5, 0.3, 12).data
    upload, errors = ex.read_upload("data:text/csv;base64," + base64.b64encode(ACCOUNTS_CSV.encode()).decode(),
                                    "accounts.csv", market)
    assert upload is not None and not errors
    return dict(doc, book=book, market=market, settings=settings_, account=acct,
                liquidation={"stress": stress, "params": params, "path": path},
                exchange={"settings": ex_settings, "upload": upload})


@pytest.fixture
def repo(tmp_path) -> store.WorkspaceStore:
    return store.WorkspaceStore.open(f"sqlite:///{tmp_path / 'ws.sqlite3'}")


# ----------------------------------------------------------------------------- document + database


def engine_results(doc: dict) -> dict:
    """What the pages show, recomputed from a document."""
    analysis = state.analysis(doc["book"], doc["market"], doc["settings"])
    margins = account.margins(doc["book"], doc["market"], doc["account"])
    health = account.health(doc["book"], doc["market"], doc["account"])
    queue = ex.queue("uploaded", doc["exchange"]["settings"], doc["exchange"]["upload"], doc["market"], doc["account"])
    return {"totals": analysis.totals, "positions": analysis.positions.fillna(-1.0).to_dict("records"),
            "im": {m: r.initial for m, r in margins.items()}, "equity": health.equity, "mm": health.maintenance,
            "liq": liq.settings_of(doc["liquidation"]["params"]).cost, "queue": ex.summary(queue)}


def test_every_part_round_trips_through_the_database_with_identical_engine_results(repo, edited_doc):
    info = repo.create("key:me", "desk", payload.encode(edited_doc), payload.PAYLOAD_VERSION)
    _, document = repo.load("key:me", info.id)
    opened = payload.open_document(document.payload, "workspace 'desk'")
    assert opened.problems == ()
    for part in ("book", "market", "settings", "account", "liquidation", "exchange"):
        assert opened.payload[part] == edited_doc[part], part
    assert engine_results(opened.payload) == engine_results(edited_doc)
    # and the edits are really there (values typed in above, not read back from the code)
    assert len(opened.payload["book"]["positions"]) == 198
    assert opened.payload["market"]["underlyings"]["BTC"]["spot"] == 91234.5
    assert opened.payload["settings"]["horizons_days"] == [0.0, 2.0, 14.0]
    assert opened.payload["account"]["collateral"] == 1_500_000.0 and opened.payload["account"]["model"] == "span"
    assert opened.payload["liquidation"]["path"]["spot_shock"] == [0.0, -0.1, -0.25]
    assert opened.payload["exchange"]["upload"]["accounts"] == 2


def test_a_version_1_document_opens_with_numbered_rows_and_page_defaults():
    book, market, settings_ = state.default_stores()
    v1 = {"format": payload.FORMAT, "version": 1,
          "book": {"name": book["name"], "positions": [{k: r[k] for k in ("instrument", "quantity", "entry_price")}
                                                       for r in book["positions"]]},
          "market": market, "settings": settings_,
          "account": {"collateral": 123456.0, "model": "standard", "params": {}}}
    opened = payload.open_document(orjson.dumps(v1))
    assert opened.problems == ()
    doc = opened.payload
    assert doc["version"] == 2
    assert [r["id"] for r in doc["book"]["positions"]] == [str(k) for k in range(1, 201)]
    assert doc["account"]["collateral"] == 123456.0
    assert doc["liquidation"] == payload.default_page_parts()["liquidation"]
    assert state.analysis(doc["book"], market, settings_).totals == state.analysis(book, market, settings_).totals


@pytest.mark.parametrize(("raw", "says"), [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a pmdash workspace"),
    (orjson.dumps({"format": "pmdash-workspace", "version": 99}), "newer pmdash"),
    (orjson.dumps({"format": "pmdash-workspace", "version": "2"}), "version"),
    (b" " * (payload.MAX_PAYLOAD_BYTES + 1), "more than the 4 MB"),
])
def test_a_corrupt_or_oversized_document_is_refused_with_a_message(raw, says):
    opened = payload.open_document(raw, "session.json")
    assert opened.payload is None
    assert says in opened.problems[0] and "nothing was opened" in opened.problems[0]


def _damaged(part: str, change) -> bytes:
    doc = copy.deepcopy(payload.default_payload())
    change(doc)
    return payload.encode(doc)


@pytest.mark.parametrize(("change", "names"), [
    (lambda d: d["market"]["underlyings"]["BTC"]["smile"][0].update(atm_vol=-0.2), "market"),
    (lambda d: d["book"]["positions"][2].update(instrument="BTC-32XYZ26-1-C"), "row 3"),
    (lambda d: d["book"]["positions"][0].update(quantity=0), "quantity"),
    (lambda d: d["account"].update(model="guess"), "account.model"),
    (lambda d: d["account"].update(collateral=-5), "account.collateral"),
    (lambda d: d["account"]["params"].update(risk_based={"preset": "x"}), "account.params.risk_based"),
    (lambda d: d["settings"].update(spot_steps=0), "settings"),
    (lambda d: d["liquidation"]["params"]["plan"].update(chunk=-1), "liquidation.params"),
    (lambda d: d["liquidation"].update(path={"hours": [0, -1], "spot_shock": [0, 0]}), "liquidation.path"),
    (lambda d: d["exchange"]["settings"].update(top_n=0), "exchange.settings"),
    (lambda d: d["exchange"].update(upload={"filename": "a.csv", "text": "nonsense"}), "exchange.upload"),
])
def test_a_bad_part_refuses_the_whole_document_naming_it(change, names):
    opened = payload.open_document(_damaged("", change))
    assert opened.payload is None
    assert names in opened.problems[0], opened.problems


json_leaves = st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers(-2**53, 2**53) | st.text(max_size=10)
json_trees = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
documents = st.fixed_dictionaries({"format": st.just(payload.FORMAT), "version": st.sampled_from([1, 2]),
                                   "book": json_trees, "market": json_trees, "settings": json_trees,
                                   "account": json_trees, "liquidation": json_trees, "exchange": json_trees})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | documents.map(orjson.dumps))
def test_open_document_never_raises_on_arbitrary_input(raw):
    opened = payload.open_document(raw)
    assert (opened.payload is None) == bool(opened.problems)


# ----------------------------------------------------------------------------- database


def test_workspace_operations_and_owner_scoping(repo):
    a = repo.create("key:alice", "  Monday   desk ", b'{"n": 1}', 2)
    assert a.name == "Monday desk" and a.revision == 1
    b = repo.duplicate("key:alice", a.id)
    assert b.name == "Monday desk (copy)" and b.id != a.id
    assert repo.rename("key:alice", b.id, "Tuesday").name == "Tuesday"
    assert sorted(w.name for w in repo.list("key:alice")) == ["Monday desk", "Tuesday"]
    assert repo.list("key:bob") == []
    for operation in (lambda: repo.load("key:bob", a.id), lambda: repo.rename("key:bob", a.id, "x"),
                      lambda: repo.delete("key:bob", a.id)):
        with pytest.raises(store.WorkspaceError, match="no such workspace"):
            operation()
    assert repo.delete("key:alice", a.id) == "Monday desk"
    assert [w.name for w in repo.list("key:alice")] == ["Tuesday"]
    with pytest.raises(store.WorkspaceError, match="give the workspace a name"):
        repo.create("key:alice", "   ", b"{}", 2)


def test_oversized_saves_and_shares_are_refused_with_a_message(repo):
    big = b"x" * (payload.MAX_PAYLOAD_BYTES + 1)
    with pytest.raises(store.WorkspaceError, match=r"4\.0 MB, more than the 4 MB allowed"):
        repo.create("key:me", "big", big, 2)
    with pytest.raises(store.WorkspaceError, match="allowed"):
        repo.share("big", big, 2)
    assert repo.count() == 0


def test_a_save_over_a_newer_revision_is_refused_and_loses_nothing(repo):
    w = repo.create("key:me", "desk", b'{"by": "nobody"}', 2)
    first = repo.save("key:me", w.id, b'{"by": "tab 1"}', 2, seen_revision=1)
    assert first.revision == 2
    with pytest.raises(store.StaleWorkspaceError, match="saved elsewhere"):
        repo.save("key:me", w.id, b'{"by": "tab 2"}', 2, seen_revision=1)
    assert repo.load("key:me", w.id)[1].payload == b'{"by": "tab 1"}'


def _increment(url: str, workspace_id: str, times: int) -> None:
    """Read the counter, add one, save against the revision read; on a conflict read again."""
    repo = store.WorkspaceStore(store.make_engine(url))
    done = 0
    while done < times:
        info, document = repo.load("key:me", workspace_id)
        n = orjson.loads(document.payload)["n"]
        try:
            repo.save("key:me", workspace_id, orjson.dumps({"n": n + 1}), 2, seen_revision=info.revision)
        except store.StaleWorkspaceError:
            continue
        done += 1


def test_concurrent_saves_from_two_processes_lose_no_update(repo):
    url = str(repo.engine.url)
    w = repo.create("key:me", "counter", b'{"n": 0}', 2)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_increment, args=(url, w.id, 20)) for _ in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    info, document = repo.load("key:me", w.id)
    assert orjson.loads(document.payload) == {"n": 40}
    assert info.revision == 41


def _die_mid_save(url: str, workspace_id: str) -> None:
    repo = store.WorkspaceStore(store.make_engine(url))
    with Session(repo.engine) as session:
        session.begin()
        w = session.get(store.Workspace, workspace_id)
        w.payload, w.revision = b'{"half": "written"}', 99
        session.flush()  # the UPDATE is in the database file's journal, not committed
        os._exit(3)  # the worker is killed before COMMIT


def test_a_crash_mid_save_leaves_the_previous_version_intact(repo):
    w = repo.create("key:me", "desk", b'{"good": 1}', 2)
    context = multiprocessing.get_context("spawn")
    p = context.Process(target=_die_mid_save, args=(str(repo.engine.url), w.id))
    p.start()
    p.join(60)
    assert p.exitcode == 3
    info, document = repo.load("key:me", w.id)
    assert document.payload == b'{"good": 1}' and info.revision == 1
    assert repo.save("key:me", w.id, b'{"good": 2}', 2, seen_revision=1).revision == 2  # no lock left behind


def test_schema_is_versioned_migrated_and_a_newer_one_refused(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'schema.sqlite3'}"
    engine = store.make_engine(url)
    assert store.ensure_schema(engine) == store.SCHEMA_VERSION == 1
    monkeypatch.setattr(store, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(store, "MIGRATIONS", {1: ("CREATE TABLE added_in_2 (x INTEGER)",)})
    assert store.ensure_schema(engine) == 2
    with engine.connect() as c:
        assert c.execute(text("SELECT value FROM pmdash_meta WHERE key = 'schema_version'")).scalar() == "2"
        c.execute(text("SELECT x FROM added_in_2"))
    monkeypatch.setattr(store, "SCHEMA_VERSION", 1)
    with pytest.raises(RuntimeError, match="newer than this pmdash"):
        store.ensure_schema(engine)


def test_the_default_database_is_created_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("PMDASH_DATA_DIR", str(tmp_path / "new" / "dir"))
    monkeypatch.delenv("PMDASH_DATABASE_URL", raising=False)
    repo = store.WorkspaceStore.open()
    repo.create("key:me", "x", b"{}", 2)
    assert (tmp_path / "new" / "dir" / "workspaces.sqlite3").is_file()
    monkeypatch.setenv("PMDASH_DATABASE_URL", "sqlite:///" + str(tmp_path / "elsewhere.db"))
    assert store.database_url().endswith("elsewhere.db")


# ----------------------------------------------------------------------------- share links


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("PMDASH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PMDASH_DATABASE_URL", raising=False)
    monkeypatch.delenv("PMDASH_USER_HEADER", raising=False)
    application = new_app()
    yield application
    clear_dash_state()


def test_share_tokens_carry_256_random_bits_and_only_their_hash_is_stored(repo):
    tokens = [repo.share("snap", b"{}", 2) for _ in range(200)]
    assert len(set(tokens)) == 200
    for token in tokens[:20]:
        assert len(base64.urlsafe_b64decode(token + "=")) == 32  # 256 bits ≥ the 128 asked for
    with Session(repo.engine) as session:
        stored = set(session.scalars(select(store.Share.token_hash)))
    assert not stored & set(tokens)
    assert stored == {store.token_hash(t) for t in tokens}


def test_a_share_link_opens_only_its_own_snapshot_and_cannot_be_guessed_or_listed(app):
    from dashboard.workspaces import web

    client = app.server.test_client()
    with app.server.app_context():
        repo = web.workspace_store()
        repo.create("key:someone", "private desk", b'{"secret": 1}', 2)
        token = repo.share("zq shared name", payload.encode(payload.default_payload()), 2)
    response = client.get(f"/s/{token}")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/workspaces#share={token}"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    near = token[:-1] + ("A" if token[-1] != "A" else "B")
    for path in (f"/s/{near}", "/s/" + "A" * 43, "/s/%2A", "/s/" + token.upper()):
        assert client.get(path).status_code == 404, path
    for path in ("/s/", "/s", "/workspaces"):  # Dash's page shell, with no workspace or token in it
        body = client.get(path).get_data(as_text=True)
        assert "private desk" not in body and token not in body and "zq shared name" not in body
    # no URL of the server lists workspaces or shares
    assert not [r.rule for r in app.server.url_map.iter_rules() if re.search(r"workspace|share|/s$", r.rule)
                and r.rule != "/s/<token>"]


def test_the_owner_comes_from_the_proxy_header_when_configured(app, monkeypatch):
    from dashboard.workspaces import web

    with app.server.test_request_context(headers={"X-Forwarded-User": "alice"}):
        assert web.owner("k" * 24).startswith("key:")
        monkeypatch.setenv("PMDASH_USER_HEADER", "X-Forwarded-User")
        assert web.owner(None) == "user:alice"
    with app.server.test_request_context(), pytest.raises(store.WorkspaceError, match="no workspace key"):
        web.owner(None)


# ----------------------------------------------------------------------------- session file (page)


def test_an_oversized_or_corrupt_session_file_is_refused_and_the_tab_keeps_its_state(app, edited_doc):
    import sys

    from dash import no_update

    page = sys.modules["dashboard.pages.workspaces"]

    def upload(raw: bytes, name: str):
        with app.server.test_request_context():
            return page.upload_session_file("data:application/json;base64," + base64.b64encode(raw).decode(),
                                            name, history.empty())

    for raw, says in ((b"x" * (payload.MAX_PAYLOAD_BYTES + 10), "more than the 4 MB"),
                      (payload.encode(edited_doc)[:-40], "not JSON"),
                      (payload.encode(dict(edited_doc, market={"usd_rate": "high"})), "market")):
        package, shown = upload(raw, "session.pmdash.json")
        assert package is no_update  # nothing reaches the stores
        assert says in str(shown)
    package, _ = upload(payload.encode(edited_doc), "monday.pmdash.json")
    assert package["stores"][ids.BOOK_STORE] == edited_doc["book"]
    assert package["stores"][ids.WS_CURRENT]["name"] == "monday"
    assert package["stores"][ids.WS_HISTORY]["present"]["book"] == edited_doc["book"]


# ----------------------------------------------------------------------------- controls


def test_an_opened_document_sets_the_page_controls_to_reproduce_its_settings(edited_doc):
    values = {controls.stringify_id(cid): v for cid, v in controls.control_values(edited_doc)}
    s = state.settings_from_controls(values[ids.SPOT_RANGE], values[ids.SPOT_STEPS], values[ids.VOL_RANGE],
                                     values[ids.VOL_STEPS], values[ids.HORIZONS], edited_doc["book"],
                                     edited_doc["market"])
    assert s.data == edited_doc["settings"]
    shown = {f.name: values[controls.stringify_id({"type": ids.LIQ_PARAM, "name": f.name})] for f in liq.FIELDS}
    assert liq.params_from_controls(shown, values[ids.LIQ_AUCTION_PRESET]).data == edited_doc["liquidation"]["params"]
    assert values[ids.LIQ_AUCTION_PRESET] == "mainnet"
    assert liq.stress_from_controls(values[ids.LIQ_STRESS_MODE], values[ids.LIQ_SHOCK],
                                    values[ids.LIQ_COLLATERAL]).data == edited_doc["liquidation"]["stress"]
    assert ex.settings_from_controls(*(values[i] for i in (ids.EX_ACCOUNTS, ids.EX_SEED, ids.EX_SHOCK, ids.EX_TOP_N,
                                                           ids.EX_IMPACT_K, ids.EX_TURNOVER, ids.EX_ROUNDS))
                                     ).data == edited_doc["exchange"]["settings"]


def test_persistence_entries_name_the_controls_as_the_renderer_does(app, edited_doc):
    with app.server.app_context():
        entries = controls.persistence_entries(edited_doc)
        assert controls.persistence_entries(payload.default_payload()) == {}
    # stress page layout: 41 spot steps; the document has 21
    assert entries["_dash_persistence.stress-spot-steps.value.true"] == [21, 41]
    assert entries['_dash_persistence.{"name":"cost.impact_k","type":"liq-param"}.value.true'] == [1.7, 1.0]
    assert entries["_dash_persistence.liq-collateral.value.true"] == [750000.0]  # the input has no layout value


def test_the_browser_script_knows_the_same_version_and_stores():
    script = (ROOT / "assets" / "workspaces.js").read_text()
    assert f"var PAYLOAD_VERSION = {payload.PAYLOAD_VERSION};" in script
    keys = re.search(r"var STATE_KEYS = \[(.*?)\];", script, re.S).group(1)
    assert re.findall(r'"([^"]+)"', keys) == [*payload.STORES.values(), ids.WS_CURRENT]


# ----------------------------------------------------------------------------- undo history


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=5), max_leaves=12)
json_dicts = st.dictionaries(st.sampled_from("abcde"), json_values, max_size=5)


@given(json_dicts, json_dicts)
def test_a_diff_applied_forward_and_backward_gives_either_side(before, after):
    changes = history.diff(before, after)
    assert history.apply(before, changes) == after
    assert history.apply(after, changes, forward=False) == before


def _book_edits(n: int):
    book, market, _ = state.default_stores()
    acct = account.default_account()
    states = [{"book": book, "market": market, "account": acct}]
    for k in range(n):
        positions = [dict(r) for r in states[-1]["book"]["positions"]]
        if k % 3 == 2:
            positions.pop(k % len(positions))
        else:
            positions[k % len(positions)]["quantity"] = float(k + 1)
        states.append(dict(states[-1], book=dict(states[-1]["book"], positions=positions)))
    return states


def test_sixty_edits_undo_back_to_the_start_and_redo_to_the_end():
    states = _book_edits(60)
    h = history.empty()
    for s in states:
        h = history.record(h, s)
    assert len(h["past"]) == 60
    for expected in reversed(states[:-1]):
        h, restored = history.undo(h)
        assert restored == expected
    assert history.undo(h) is None
    for expected in states[1:]:
        h, restored = history.redo(h)
        assert restored == expected
    assert history.redo(h) is None


def test_a_cell_edit_records_one_row_and_a_new_edit_drops_the_redo_steps():
    states = _book_edits(2)
    h = history.record(history.record(history.empty(), states[0]), states[1])
    step = h["past"][-1]
    assert list(step) == ["book"]
    change = step["book"]["positions"]
    assert change["at"] == 0 and len(change["old"]) == len(change["new"]) == 1
    assert history.record(h, states[1]) is h  # nothing changed, nothing recorded
    h, _ = history.undo(h)
    h = history.record(h, dict(states[0], account=dict(states[0]["account"], collateral=1.0)))
    assert h["future"] == [] and list(h["past"][-1]) == ["account"]


def test_the_history_keeps_at_most_its_step_limit():
    h = history.empty()
    for k in range(history.MAX_STEPS + 30):
        h = history.record(h, {"book": {"n": k}, "market": {}, "account": {}})
    assert len(h["past"]) == history.MAX_STEPS
    assert h["past"][0]["book"]["n"] == {"old": 29, "new": 30}


def test_a_risk_based_param_edit_survives_the_round_trip():
    doc = payload.default_payload()
    params = params_to_dict(default_params("risk_based"))
    doc["account"]["params"] = {"risk_based": params}
    opened = payload.open_document(payload.encode(doc))
    assert opened.payload["account"]["params"]["risk_based"] == params


# ----------------------------------------------------------------------------- PostgreSQL (optional)


def _as_postgres_user(command: str) -> list[str]:
    """initdb refuses to run as root: as root, run it as the Debian ``postgres`` user."""
    return ["su", "postgres", "-s", "/bin/sh", "-c", command] if os.geteuid() == 0 else ["/bin/sh", "-c", command]


@pytest.fixture(scope="module")
def postgres_url():
    """``PMDASH_TEST_POSTGRES_URL``, or a throw-away cluster of the Debian ``postgresql`` package
    started here; the tests skip when neither is available (or psycopg is not installed)."""
    import shutil
    import subprocess
    import tempfile

    pytest.importorskip("psycopg")
    if os.environ.get("PMDASH_TEST_POSTGRES_URL"):
        yield os.environ["PMDASH_TEST_POSTGRES_URL"]
        return
    bindir = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
    if bindir is None or (os.geteuid() == 0 and shutil.which("su") is None):
        pytest.skip("no PostgreSQL server installed (Debian package postgresql)")
    root = Path(tempfile.mkdtemp(prefix="pmdash-pg-"))  # short (socket path) and reachable by postgres
    os.chmod(root, 0o777)
    data, port = root / "data", 54000 + os.getpid() % 1000
    start = (f"{bindir}/initdb -D {data} -A trust -U postgres >{root}/initdb.log 2>&1 && {bindir}/pg_ctl -D {data} "
             f"-o '-k {root} -p {port} -c listen_addresses=' -l {root}/log -w start >/dev/null")
    if subprocess.run(_as_postgres_user(start), check=False).returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip("could not start a PostgreSQL cluster with initdb/pg_ctl")
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run(_as_postgres_user(f"{bindir}/pg_ctl -D {data} -m immediate -w stop >/dev/null"), check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_postgresql_round_trip_revision_check_and_concurrent_saves(postgres_url, edited_doc):
    repo = store.WorkspaceStore.open(postgres_url)
    assert store.ensure_schema(repo.engine) == store.SCHEMA_VERSION  # a second start finds the schema
    info = repo.create("key:pg", "desk", payload.encode(edited_doc), payload.PAYLOAD_VERSION)
    opened = payload.open_document(repo.load("key:pg", info.id)[1].payload)
    assert opened.payload == edited_doc
    token = repo.share("snap", payload.encode(edited_doc), 2)
    assert repo.open_share(token).payload == payload.encode(edited_doc) and repo.open_share(token + "x") is None

    counter = repo.create("key:me", "counter", b'{"n": 0}', 2)
    repo.save("key:me", counter.id, b'{"n": 0}', 2, seen_revision=1)
    with pytest.raises(store.StaleWorkspaceError):
        repo.save("key:me", counter.id, b'{"n": -1}', 2, seen_revision=1)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_increment, args=(postgres_url, counter.id, 10)) for _ in range(2)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
        assert p.exitcode == 0
    assert orjson.loads(repo.load("key:me", counter.id)[1].payload) == {"n": 20}
    repo.engine.dispose()


# ----------------------------------------------------------------------------- two gunicorn workers


def _callback_request(app_key: str, inputs: list, states: list) -> bytes:
    outputs = []
    for spec in app_key.strip(".").split("..."):
        component, prop = spec.split(".", 1)
        outputs.append({"id": component, "property": prop})
    return orjson.dumps({"output": app_key, "outputs": outputs, "inputs": inputs, "state": states,
                         "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"]})


def test_two_gunicorn_workers_saving_one_workspace_at_once_lose_no_update(tmp_path, app):
    """Two tabs press Save on the same workspace at the same moment, served by two workers:
    one save wins, the other is refused with a message; never both written over each other."""
    import socket
    import subprocess
    import sys
    import threading
    import time
    import urllib.request

    from dashboard.workspaces import web

    pytest.importorskip("gunicorn")
    app.server.test_client().get("/")  # Dash registers the page callbacks on the first request
    key = next(k for k in app.callback_map if "ws-share-link.value" in k)
    data_dir = tmp_path / "served"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}",
                               "dashboard.app:server"], cwd=ROOT, env=dict(os.environ, PMDASH_DATA_DIR=str(data_dir)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(480):  # up to 2 minutes for both workers to import the app
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(0.25)
        repo = store.WorkspaceStore.open(f"sqlite:///{data_dir / 'workspaces.sqlite3'}")
        browser_key = "k" * 24
        doc = payload.default_payload()
        w = repo.create(web.owner(browser_key), "desk", payload.encode(doc), 2)

        def save(tab: str, revision: int, results: dict):
            book = dict(doc["book"], name=tab)
            states = [{"id": i, "property": "data", "value": v} for i, v in
                      ((ids.BOOK_STORE, book), (ids.MARKET_STORE, doc["market"]), (ids.SETTINGS_STORE, doc["settings"]),
                       (ids.ACCOUNT_STORE, doc["account"]))]
            states += [{"id": ids.WS_NAME, "property": "value", "value": "desk"},
                       {"id": ids.WS_OWNER, "property": "data", "value": browser_key},
                       {"id": ids.WS_CURRENT, "property": "data",
                        "value": {"id": w.id, "name": "desk", "revision": revision, "source": "workspace"}}]
            inputs = [{"id": ids.WS_GATHER, "property": "data", "value": {"action": ids.WS_SAVE, "at": 1, "pages": {}}}]
            request = urllib.request.Request(f"http://127.0.0.1:{port}/_dash-update-component",
                                             _callback_request(key, inputs, states),
                                             {"Content-Type": "application/json"})
            results[tab] = orjson.loads(urllib.request.urlopen(request, timeout=120).read())["response"]

        for round_ in range(1, 4):  # each round: both tabs saw the same revision
            results: dict = {}
            threads = [threading.Thread(target=save, args=(tab, round_, results)) for tab in ("tab A", "tab B")]
            for t in threads:
                t.start()
            for t in threads:
                t.join(150)
            winners = [tab for tab, r in results.items() if "ws-current" in r]
            losers = [tab for tab, r in results.items() if "ws-current" not in r]
            assert len(winners) == 1 and len(losers) == 1, results
            assert "saved elsewhere" in orjson.dumps(results[losers[0]]).decode()
            info, document = repo.load(web.owner(browser_key), w.id)
            assert info.revision == round_ + 1
            assert orjson.loads(document.payload)["book"]["name"] == winners[0]
    finally:
        server.terminate()
        server.wait(30)


def test_an_autosave_of_an_older_version_is_upgraded_and_checked_before_it_is_loaded(app):
    from dash.exceptions import PreventUpdate

    from dashboard.workspaces import web

    book, market, settings_ = state.default_stores()
    v1_rows = [{k: r[k] for k in ("instrument", "quantity", "entry_price")} for r in book["positions"][:5]]
    items = {ids.BOOK_STORE: orjson.dumps({"name": "old", "positions": v1_rows}).decode(),
             ids.MARKET_STORE: orjson.dumps(market).decode(), ids.SETTINGS_STORE: orjson.dumps(settings_).decode(),
             ids.ACCOUNT_STORE: orjson.dumps(account.default_account()).decode()}
    with app.server.app_context():
        package = web.restore_autosave({"version": 1, "items": items}, None)
        assert [r["id"] for r in package["stores"][ids.BOOK_STORE]["positions"]] == ["1", "2", "3", "4", "5"]
        assert package["stores"][ids.LIQ_PARAMS_STORE] == liq.DEFAULT_PARAMS
        assert package["stores"][ids.WS_RESTORE] is None  # used once
        broken = dict(items, **{ids.MARKET_STORE: '{"usd_rate": "high"}'})
        assert web.restore_autosave({"version": 1, "items": broken}, None)["stores"] == {ids.WS_RESTORE: None}
        with pytest.raises(PreventUpdate):
            web.restore_autosave(None, None)


def test_share_links_use_the_public_url_when_set(app, monkeypatch):
    from dashboard.workspaces import web

    with app.server.test_request_context(base_url="http://10.0.0.5:8050"):
        assert web.share_url("abc") == "http://10.0.0.5:8050/s/abc"
        monkeypatch.setenv("PMDASH_PUBLIC_URL", "https://risk.example.com/")
        assert web.share_url("abc") == "https://risk.example.com/s/abc"
