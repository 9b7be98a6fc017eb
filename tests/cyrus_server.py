"""Cyrus IMAP (3.6, Debian's cyrus-imapd + cyrus-caldav) as a third real CalDAV server.

Cyrus runs fully relocated: its own imapd.conf and cyrus.conf in a temp folder, its
master process in the foreground (`-D`), IMAP and HTTP on 127.0.0.1 at free high
ports. Users live in a sasldb made by `saslpasswd2 -f`; a user's calendars exist only
once their mailbox does, so the admin creates `user.alice` over IMAP first. Cyrus
logs only to /dev/log: when it fails to start, its syslog lines are not ours to read.

As root, Cyrus switches to its `cyrus` user, so the folder lives under /tmp (pytest's
own tmp folders are 0700 root) and is handed to that user. `.ci/run` installs the
packages where they are missing; the fixture skips, saying why, only where they are
not installed (and fails instead under CI, which must have installed them).
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.caldav_servers import DavServer, free_port, running, wait_for_port

BIN = Path("/usr/lib/cyrus/bin")
MASTER = BIN / "master"
SASLPASSWD = Path("/usr/sbin/saslpasswd2")
PACKAGES = "cyrus-imapd cyrus-caldav sasl2-bin"
USER, ADMIN = "alice", "admin"
STARTUP = 30.0  # seconds: master's database recovery, then the listeners

_IMAPD = """\
configdirectory: {d}/conf
partition-default: {d}/spool
sievedir: {d}/sieve
admins: {admin}
servername: localhost
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: {d}/sasldb2
sasl_mech_list: PLAIN
allowplaintext: yes
httpmodules: caldav
httpallowcompress: no
idlesocket: {d}/socket/idle
notifysocket: {d}/socket/notify
lmtpsocket: {d}/socket/lmtp
mboxname_lockpath: {d}/lock
proc_path: {d}/proc
duplicate_db_path: {d}/conf/deliver.db
statuscache_db_path: {d}/conf/statuscache.db
syslog_prefix: runner-test-cyrus
unixhierarchysep: no
delete_mode: immediate
{user_line}"""

_CYRUS = """\
START {{
  recover cmd="ctl_cyrusdb -C {d}/imapd.conf -r"
}}
SERVICES {{
  imap cmd="imapd -C {d}/imapd.conf" listen="127.0.0.1:{imap}" prefork=0
  http cmd="httpd -C {d}/imapd.conf" listen="127.0.0.1:{http}" prefork=0
}}
EVENTS {{
}}
DAEMON {{
}}
"""


def missing() -> str | None:
    """Why Cyrus cannot run here, or None when it can."""
    absent = [str(p) for p in (MASTER, BIN / "httpd", SASLPASSWD) if not p.exists()]
    if absent:
        return (
            f"Cyrus IMAP is not installed ({', '.join(absent)} missing; apt-get install {PACKAGES})"
        )
    return None


def start_cyrus() -> DavServer:
    """Lay out a relocated Cyrus, start its master and make the user's mailbox."""
    folder = Path(tempfile.mkdtemp(prefix="runner-test-cyrus-"))
    for sub in ("conf/db", "conf/user", "conf/quota", "conf/sieve", "spool", "sieve"):
        (folder / sub).mkdir(parents=True)
    for sub in ("socket", "lock", "proc", "run"):
        (folder / sub).mkdir()
    imap, http = free_port(), free_port()
    # As root Cyrus drops to its own user; anyone else runs it as themselves.
    user_line = "" if os.geteuid() == 0 else f"cyrus_user: {pwd.getpwuid(os.geteuid()).pw_name}\n"
    (folder / "imapd.conf").write_text(_IMAPD.format(d=folder, admin=ADMIN, user_line=user_line))
    (folder / "cyrus.conf").write_text(_CYRUS.format(d=folder, imap=imap, http=http))
    password = "cyrus-" + os.urandom(6).hex()
    for name in (USER, ADMIN):
        subprocess.run(
            [str(SASLPASSWD), "-p", "-c", "-f", str(folder / "sasldb2"), "-u", "localhost", name],
            input=password.encode(),
            check=True,
            capture_output=True,
        )
    if os.geteuid() == 0:
        entry = pwd.getpwnam("cyrus")
        os.chmod(folder, 0o700)
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)
    log = folder / "master.out"
    command = [str(MASTER), "-C", str(folder / "imapd.conf"), "-M", str(folder / "cyrus.conf")]
    command += ["-p", str(folder / "run" / "master.pid"), "-D"]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = DavServer("cyrus", http, f"/dav/calendars/user/{USER}/", USER, password, proc)
    server.folder = folder
    try:
        wait_for_port(http, proc, log, STARTUP)
        wait_for_port(imap, proc, log, STARTUP)
        _create_mailbox(imap, password, time.monotonic() + STARTUP)
    except BaseException:
        stop_cyrus(server)
        raise
    return server


def _create_mailbox(port: int, password: str, deadline: float) -> None:
    """`CREATE user.alice` as the admin: Cyrus keeps calendars inside the mailbox."""
    while True:
        try:
            with imaplib.IMAP4("127.0.0.1", port, timeout=10) as imap:
                imap.login(ADMIN, password)
                status, answer = imap.create(f"user.{USER}")
                if status != "OK":
                    raise RuntimeError(f"Cyrus refused CREATE user.{USER}: {answer!r}")
                return
        except (OSError, imaplib.IMAP4.abort) as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Cyrus IMAP did not answer within {STARTUP}s: {exc}") from None
            time.sleep(0.1)


def stop_cyrus(server: DavServer) -> None:
    with running(server):
        pass  # running() stops the master (SIGTERM, then SIGKILL after 10 s)
    if server.folder is not None:
        shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def cyrus() -> Iterator[DavServer]:
    reason = missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; .ci/run should have installed it")
        pytest.skip(reason)
    server = start_cyrus()
    try:
        yield server
    finally:
        with contextlib.suppress(OSError):
            stop_cyrus(server)
