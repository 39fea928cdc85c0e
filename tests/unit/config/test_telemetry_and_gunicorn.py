"""Tracing is off unless OTEL variables ask for it; gunicorn's hooks keep metrics sane."""

import importlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.telemetry import (
    REDACTED_HEADERS,
    SANITIZE_FIELDS,
    redact_credential_headers,
    traces_exporters,
    tracing_requested,
)
from tests.metrics import collected, record_in_a_process

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, True),
        ({"OTEL_TRACES_EXPORTER": ""}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, False),
    ],
)
def test_tracing_is_requested_only_by_otel_variables(environ, expected):
    assert tracing_requested(environ) is expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": " otlp , console,otlp"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "None", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
    ],
)
def test_the_traces_exporters_are_the_standard_ones_the_platform_has(environ, expected):
    assert traces_exporters(environ) == expected


@pytest.mark.parametrize("value", ["bogus", "zipkin", "otlp,jaeger", "otlp,none", "otlp,"])
def test_another_traces_exporter_stops_the_start_naming_the_variable(value):
    # Any value but `console` and `none` turned tracing on with an OTLP exporter.
    with pytest.raises(ImproperlyConfigured, match="OTEL_TRACES_EXPORTER must be"):
        traces_exporters({"OTEL_TRACES_EXPORTER": value})
    with pytest.raises(ImproperlyConfigured, match="OTEL_TRACES_EXPORTER must be"):
        tracing_requested({"OTEL_TRACES_EXPORTER": value})


@pytest.mark.parametrize("environ", [{}, {SANITIZE_FIELDS: ""}, {SANITIZE_FIELDS: " "}])
def test_captured_credential_headers_are_redacted_unless_the_operator_says_otherwise(environ):
    redact_credential_headers(environ)
    assert environ[SANITIZE_FIELDS] == ",".join(REDACTED_HEADERS)


def test_the_operators_own_list_of_headers_to_redact_is_kept():
    environ = {SANITIZE_FIELDS: "x-tenant"}
    redact_credential_headers(environ)
    assert environ == {SANITIZE_FIELDS: "x-tenant"}


# The class of each exporter on the tracer provider `configure_tracing` installed, one a line.
INSTALLED_EXPORTERS = """
from opentelemetry import trace
from config.telemetry import configure_tracing
assert configure_tracing()
provider = trace.get_tracer_provider()
for processor in provider._active_span_processor._span_processors:
    print(type(processor.span_exporter).__name__)
provider.shutdown()
"""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("otlp,console", {"OTLPSpanExporter", "ConsoleSpanExporter"}),
        ("console", {"ConsoleSpanExporter"}),
        ("otlp", {"OTLPSpanExporter"}),
    ],
)
def test_configure_tracing_installs_each_exporter_asked_for(tmp_path, value, expected):
    # In a process of its own: the tracer provider and the instrumentation are set once.
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DJANGO_"))}
    with socket.socket() as unused:  # bound, never listening: nothing could receive a span
        unused.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{unused.getsockname()[1]}"
        configured = subprocess.run(
            [sys.executable, "-c", INSTALLED_EXPORTERS],
            cwd=ROOT,
            env={
                **environ,
                "DJANGO_SETTINGS_MODULE": "config.settings.base",
                "DJANGO_SECRET_KEY": "x" * 50,
                "JWT_SIGNING_KEY": "k" * 40,
                "VAR_DIR": str(tmp_path),
                "OTEL_TRACES_EXPORTER": value,
                "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            },
            capture_output=True,
            text=True,
        )
    assert configured.returncode == 0, configured.stderr
    exporters = configured.stdout.split()
    assert len(exporters) == len(expected), exporters  # one span processor each
    assert set(exporters) == expected


def test_gunicorn_runs_one_worker_without_redis_and_resets_metrics(monkeypatch, tmp_path):
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "prom"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("PORT", str(port))
    import config.gunicorn as gunicorn_config

    module = importlib.reload(gunicorn_config)
    assert module.workers == 1
    assert module.worker_class == "config.gunicorn_worker.LingeringThreadWorker"
    assert module.reuse_port is True
    assert module.bind.endswith(f":{port}")
    assert module.control_socket.endswith(f"/gunicorn-{port}.ctl")  # per checkout and port
    (tmp_path / "prom").mkdir()
    (tmp_path / "prom" / "stale.db").write_text("x")
    module.on_starting(None)
    assert list((tmp_path / "prom").iterdir()) == []

    listening = f"Listening at: http://{module.bind} (each worker binds it, SO_REUSEPORT)"
    sysctl = tmp_path / "tcp_migrate_req"
    monkeypatch.setattr(module, "_tcp_migrate_req", sysctl)  # this machine's value aside
    assert _ready_lines(module) == [("info", listening)]  # a kernel without the setting
    sysctl.write_text("1\n")
    assert _ready_lines(module) == [("info", listening)]
    sysctl.write_text("0\n")
    [_, (level, warning)] = _ready_lines(module)
    assert level == "warning"
    assert warning.startswith("net.ipv4.tcp_migrate_req is 0: on a reload, connections")

    class Worker:
        pid = 424242

    module.child_exit(None, Worker())


def _ready_lines(module):
    """What `when_ready` logs: (level, line) pairs."""
    lines = []

    class Log:
        def info(self, message, *args):
            lines.append(("info", message % args))

        def warning(self, message, *args):
            lines.append(("warning", message % args))

    module.when_ready(SimpleNamespace(log=Log()))
    return lines


def test_an_ended_workers_counts_stay_and_its_files_go(monkeypatch, tmp_path):
    """child_exit folds the worker's files into the archives: however many workers were
    recycled, a scrape reads a bounded number of files, and the same totals."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    import config.gunicorn as gunicorn_config

    module = importlib.reload(gunicorn_config)
    retried, ended, live = (record_in_a_process(tmp_path, amount) for amount in (1, 2, 4))
    before = collected(tmp_path)
    warnings = []
    server = SimpleNamespace(log=SimpleNamespace(warning=lambda *line: warnings.append(line)))
    (tmp_path / "counter_archive.db").mkdir()  # the first fold fails: its files must stay

    module.child_exit(server, SimpleNamespace(pid=retried))
    [(message, pid, error)] = warnings
    assert message.startswith("metrics of ended worker %s not archived yet")
    assert (pid, type(error)) == (retried, IsADirectoryError)
    assert (tmp_path / f"counter_{retried}.db").exists()
    (tmp_path / "counter_archive.db").rmdir()
    module.child_exit(server, SimpleNamespace(pid=ended))  # and the one that failed, again

    assert len(warnings) == 1
    assert {path.name.rsplit("_", 1)[1] for path in tmp_path.iterdir()} == {
        "archive.db",
        f"{live}.db",
    }
    after = collected(tmp_path)
    assert after[("jobs_total", (("queue", "a"),))] == 7
    gone = {("jobs_all", (("pid", str(pid)),)) for pid in (retried, ended)}
    gone |= {("jobs_liveall", (("pid", str(pid)),)) for pid in (retried, ended)}
    assert after == {key: value for key, value in before.items() if key not in gone}
    importlib.reload(gunicorn_config)


def test_a_pid_waiting_for_a_retry_that_a_new_worker_got_is_not_folded(monkeypatch, tmp_path):
    """The system gives an ended worker's pid to a new one before its fold is retried: the
    files are the live worker's now (it goes on from their counts) and stay."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    import config.gunicorn as gunicorn_config

    module = importlib.reload(gunicorn_config)
    reused, ended = record_in_a_process(tmp_path, 1), record_in_a_process(tmp_path, 2)
    server = SimpleNamespace(log=SimpleNamespace(warning=lambda *line: None), WORKERS={})
    (tmp_path / "counter_archive.db").mkdir()  # the first fold fails: retried later
    module.child_exit(server, SimpleNamespace(pid=reused))
    (tmp_path / "counter_archive.db").rmdir()
    server.WORKERS[reused] = SimpleNamespace(pid=reused)  # a new worker, the same pid

    module.child_exit(server, SimpleNamespace(pid=ended))

    assert (tmp_path / f"counter_{reused}.db").exists()
    assert not (tmp_path / f"counter_{ended}.db").exists()
    assert reused not in module._unarchived
    assert collected(tmp_path)[("jobs_total", (("queue", "a"),))] == 3
    importlib.reload(gunicorn_config)


def test_no_failure_to_archive_metrics_ends_the_master(monkeypatch, tmp_path):
    """An exception out of child_exit stops gunicorn's main loop, and with it every worker: a
    metrics file that cannot be read is set aside (a warning), anything else is logged."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    import config.gunicorn as gunicorn_config

    module = importlib.reload(gunicorn_config)
    cut, ended = record_in_a_process(tmp_path, 1), record_in_a_process(tmp_path, 2)
    (tmp_path / f"summary_{cut}.db").write_bytes(b"\x00\x01")
    lines = []
    log = SimpleNamespace(
        warning=lambda *line: lines.append(("warning", line[0] % line[1:])),
        exception=lambda *line: lines.append(("exception", line[0] % line[1:])),
    )
    server = SimpleNamespace(log=log)

    module.child_exit(server, SimpleNamespace(pid=cut))
    [(level, line)] = lines
    assert level == "warning"
    assert line.startswith(f"unreadable metrics file {tmp_path / f'summary_{cut}.db'} set aside")
    assert collected(tmp_path)[("jobs_total", (("queue", "a"),))] == 3

    def broken(*args, **kwargs):
        raise RuntimeError("a failure no one foresaw")

    from apps.common import metric_files

    monkeypatch.setattr(metric_files, "archive_ended_processes", broken)
    module.child_exit(server, SimpleNamespace(pid=ended))  # returns: the master goes on
    assert lines[1] == ("exception", f"metrics of ended worker {ended} not archived")
    importlib.reload(gunicorn_config)


def test_gunicorn_says_when_it_ignores_web_concurrency(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("GUNICORN_REUSE_PORT", "0")  # no "Listening at:" line to look past
    import config.gunicorn as gunicorn_config

    ignored = (
        "warning",
        "WEB_CONCURRENCY is ignored without REDIS_URL: one worker process runs, so that every"
        " request shares its in-process state",
    )
    for redis, concurrency, lines in (
        (None, "4", [ignored]),
        (None, "1", []),
        (None, None, []),
        ("redis://127.0.0.1:6379/0", "4", []),
    ):
        for name, value in (("REDIS_URL", redis), ("WEB_CONCURRENCY", concurrency)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        assert _ready_lines(importlib.reload(gunicorn_config)) == lines
    monkeypatch.delenv("GUNICORN_REUSE_PORT")
    monkeypatch.delenv("WEB_CONCURRENCY")
    monkeypatch.delenv("REDIS_URL")
    importlib.reload(gunicorn_config)


def test_gunicorn_scales_workers_with_redis(monkeypatch, tmp_path):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    import config.gunicorn as gunicorn_config

    assert importlib.reload(gunicorn_config).workers == 3


def test_a_taken_port_stops_the_start_even_with_reuse_port(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    import config.gunicorn as gunicorn_config

    module = importlib.reload(gunicorn_config)
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(SystemExit, match="cannot listen on"):
            module.ensure_port_free(address)
    module.ensure_port_free(address)  # free again once the other server is gone


def test_a_host_that_cannot_be_listened_on_stops_the_start_naming_host(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    import config.gunicorn as gunicorn_config

    module = importlib.reload(gunicorn_config)
    with pytest.raises(SystemExit, match=r"^cannot listen on no\.such\.host\.invalid:1 \(HOST\)"):
        module.ensure_port_free("no.such.host.invalid:1")
    with pytest.raises(SystemExit, match=r"^cannot listen on 192\.0\.2\.7:1 \(HOST\)"):
        module.ensure_port_free("192.0.2.7:1")  # an address of no interface here (TEST-NET-1)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        with pytest.raises(SystemExit, match=r"^cannot listen on 127\.0\.0\.1:\d+ \(PORT\)"):
            module.ensure_port_free(address)


def test_gunicorns_own_variables_are_checked_before_it_starts():
    # gunicorn reads WEB_CONCURRENCY (as gunicorn.config is imported) and FORWARDED_ALLOW_IPS
    # (as it builds its settings) before it loads config/gunicorn.py: `make run` and the image
    # run that file first, which names them.
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\nrun: install\n", 1)[1].split("\n\n", 1)[0]
    steps = [line.strip() for line in recipe.splitlines()]
    assert steps[0] == "$(PY) -m config.gunicorn", steps
    assert "gunicorn --config config/gunicorn.py" in steps[-1]
    command = (ROOT / "docker" / "Dockerfile").read_text().split("\nCMD ", 1)[1]
    assert command.index("python -m config.gunicorn &&") < command.index("manage.py migrate_all")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WEB_CONCURRENCY", "abc"),
        ("WEB_CONCURRENCY", ""),  # gunicorn's int("") fails too, even with WEB_CONCURRENCY unused
        ("FORWARDED_ALLOW_IPS", "not-an-ip"),
    ],
)
def test_the_check_before_gunicorn_names_the_variable(tmp_path, variable, value):
    environ = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "PORT")}
    environ.update(
        VAR_DIR=str(tmp_path), PROMETHEUS_MULTIPROC_DIR=str(tmp_path), TRUSTED_PROXY_COUNT="1"
    )
    checked = subprocess.run(
        [sys.executable, "-m", "config.gunicorn"],
        cwd=ROOT,
        env={**environ, variable: value},
        capture_output=True,
        text=True,
    )
    assert checked.returncode != 0
    assert f"ImproperlyConfigured: {variable} must" in checked.stderr, checked.stderr
    passed = subprocess.run(
        [sys.executable, "-m", "config.gunicorn"], cwd=ROOT, env=environ, capture_output=True
    )
    assert (passed.returncode, passed.stdout, passed.stderr) == (0, b"", b"")


def test_each_port_has_its_own_metrics_directory(monkeypatch, tmp_path):
    # A second server of one checkout (another port) must not empty the first one's files.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # restored after the test: the module
    monkeypatch.setenv("VAR_DIR", str(tmp_path))  # sets its default straight in os.environ
    import config.gunicorn as gunicorn_config

    for port in ("8601", "8602"):
        monkeypatch.setenv("PORT", port)
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
        importlib.reload(gunicorn_config)
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "prometheus" / port)


def test_a_start_on_a_taken_port_leaves_the_metrics_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("GUNICORN_REUSE_PORT", "0")  # gunicorn's own bind would fail only later
    (tmp_path / "counter_1.db").write_text("a running server's")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        monkeypatch.setenv("PORT", str(taken.getsockname()[1]))
        import config.gunicorn as gunicorn_config

        module = importlib.reload(gunicorn_config)
        with pytest.raises(SystemExit, match="cannot listen on"):
            module.on_starting(None)
    assert (tmp_path / "counter_1.db").read_text() == "a running server's"


def test_reuse_port_can_be_switched_off(monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setenv("GUNICORN_REUSE_PORT", "0")
    import config.gunicorn as gunicorn_config

    assert importlib.reload(gunicorn_config).reuse_port is False
    monkeypatch.delenv("GUNICORN_REUSE_PORT")
    importlib.reload(gunicorn_config)


def test_only_the_clients_parse_errors_become_problem_documents():
    from gunicorn.http import errors

    from config.gunicorn_worker import parse_refusal, problem_answer

    assert parse_refusal(errors.LimitRequestHeaders("too many"))[:2] == (431, "headers_too_large")
    assert parse_refusal(errors.InvalidHeader("CONTENT-LENGTH"))[:2] == (400, "malformed_request")
    assert parse_refusal(errors.InvalidResponseHeader("X-Bad", "v")) is None  # the app's fault
    assert parse_refusal(ValueError("boom")) is None
    status, code, detail = parse_refusal(errors.InvalidRequestLine("x" * 500))
    assert len(detail) <= 200
    answer = problem_answer(status, code, detail)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n")


@pytest.mark.parametrize(
    ("request_bytes", "refused"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", True),
        (b"GET http://localhost/ HTTP/1.1\r\nX-Host: localhost\r\n\r\n", True),
        (b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n", False),
        (b"GET / HTTP/1.1\r\nHost: \r\n\r\n", False),  # present: the allow-list judges it
        (b"GET / HTTP/1.0\r\n\r\n", False),
    ],
)
def test_an_http11_request_without_a_host_header_is_a_parse_error(request_bytes, refused):
    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    from config.gunicorn_worker import MissingHost, parse_refusal, require_host

    request = next(RequestParser(Config(), [request_bytes], ("127.0.0.1", 1)))
    if not refused:
        require_host(request)
        return
    with pytest.raises(MissingHost) as raised:
        require_host(request)
    assert parse_refusal(raised.value)[:2] == (400, "malformed_request")


@pytest.mark.parametrize(
    ("coding", "refused"),
    [
        (b"chunked", False),
        (b"Chunked ", False),
        (b"gzip, chunked", True),
        (b"deflate,chunked", True),
        (b"identity, chunked", True),
        (b"gzip\r\nTransfer-Encoding: chunked", True),  # one coding a line
    ],
)
def test_a_transfer_coding_other_than_chunked_is_not_implemented(coding, refused):
    # gunicorn takes the chunks off `gzip, chunked` but not the gzip: the proxy sent the coded
    # bytes on as plain content (nginx answers 501 here).
    from gunicorn.config import Config
    from gunicorn.http import errors
    from gunicorn.http.parser import RequestParser

    from config.gunicorn_worker import parse_refusal, require_chunked_only

    request_bytes = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: %s\r\n\r\n" % coding
    request = next(RequestParser(Config(), [request_bytes + b"0\r\n\r\n"], ("127.0.0.1", 1)))
    if not refused:
        require_chunked_only(request)
        return
    with pytest.raises(errors.UnsupportedTransferCoding) as raised:
        require_chunked_only(request)
    assert parse_refusal(raised.value)[:2] == (501, "not_implemented")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, ""),
        ({"TRUSTED_PROXY_COUNT": "0"}, ""),
        ({"TRUSTED_PROXY_COUNT": "1"}, "127.0.0.1,::1"),
        ({"TRUSTED_PROXY_COUNT": "1", "FORWARDED_ALLOW_IPS": "10.0.0.0/8"}, "10.0.0.0/8"),
    ],
)
def test_only_trusted_proxies_may_set_the_scheme(monkeypatch, tmp_path, environ, expected):
    for name in ("TRUSTED_PROXY_COUNT", "FORWARDED_ALLOW_IPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    import config.gunicorn as gunicorn_config

    assert importlib.reload(gunicorn_config).forwarded_allow_ips == expected


def test_an_application_error_is_logged_with_the_path_but_never_the_query():
    # gunicorn's own fallback for an error in the application logs the request target, and a
    # query may carry a token; the answer is gunicorn's plain 500 either way.
    from gunicorn.config import Config
    from gunicorn.http.parser import RequestParser

    from config.gunicorn_worker import LingeringThreadWorker

    class Log:
        def __init__(self):
            self.lines = []

        def exception(self, message, *args):
            self.lines.append(message % args)

        def access(self, *args):
            pass

        def debug(self, *args):
            pass

    request_bytes = b"GET /svc/items?access_token=eyJsecret HTTP/1.1\r\nHost: x\r\n\r\n"
    request = next(RequestParser(Config(), [request_bytes], ("127.0.0.1", 1)))
    worker = LingeringThreadWorker.__new__(LingeringThreadWorker)
    worker.log, worker.cfg = Log(), Config()
    ours, theirs = socket.socketpair()
    with ours, theirs:
        worker.handle_error(request, ours, ("127.0.0.1", 1), RuntimeError("boom"))
        assert theirs.recv(100).startswith(b"HTTP/1.1 500 ")
    assert worker.log.lines == ["Error handling request GET /svc/items"]
