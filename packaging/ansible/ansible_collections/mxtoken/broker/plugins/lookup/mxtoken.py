# Copyright: mxtoken developers
# Apache License 2.0
"""Lookup plugin: a short-lived Matrix admin token from the mxtokend broker."""

from __future__ import annotations

DOCUMENTATION = r"""
name: mxtoken
author: mxtoken developers
short_description: a short-lived Matrix admin token from the local mxtokend broker
description:
  - Runs C(mxtoken get --json) on the controller and returns the token of a fresh lease.
  - By default the lease is bound to the C(ansible-playbook) process, so the broker revokes
    the token as soon as the playbook ends (or at the lease's TTL, whichever comes first).
  - Every call takes a new lease. Take the token once per play with C(set_fact) and C(no_log),
    not in C(vars), which Ansible templates again on every use.
  - Works as C(mxtoken.broker.mxtoken) from the collection, or as C(mxtoken) when this file is
    dropped into a C(lookup_plugins/) directory next to the playbook.
options:
  profile:
    description: Broker profile to take the lease from (the broker's default profile if unset or empty).
    type: str
  ttl:
    description: Lease lifetime, e.g. C(90s), C(15m), C(1h) (the profile's default_ttl if unset).
    type: str
  purpose:
    description: Why the token is needed; recorded with the lease and on its device.
    type: str
    default: ansible-playbook
  bind:
    description:
      - End the lease when the C(ansible-playbook) process exits.
      - Turn off only when the token must outlive the playbook (then it lives until its TTL).
    type: bool
    default: true
  bind_pid:
    description: End the lease when this process exits instead (overrides I(bind)).
    type: int
  details:
    description:
      - Return a dict with C(token), C(lease_id), C(expires_at), C(homeserver), C(user_id)
        instead of the bare token (one lease either way).
    type: bool
    default: false
  wait:
    description: If the homeserver rate-limits the login, wait until it allows one.
    type: bool
    default: false
  socket:
    description: Broker socket path (mxtoken's default lookup if unset).
    type: path
  executable:
    description: The mxtoken client to run, a path or a name looked up on PATH.
    type: str
    default: mxtoken
    env:
      - name: MXTOKEN_BIN
notes:
  - The token never appears in the command line, the environment or a file; mxtoken prints it
    on a pipe that only this plugin reads. Errors carry mxtoken's one-sentence message, never a token.
  - The returned value is marked unsafe, so Ansible never templates it.
"""

EXAMPLES = r"""
- name: Take a token for this play
  ansible.builtin.set_fact:
    matrix_token: "{{ lookup('mxtoken.broker.mxtoken', ttl='15m', purpose='list rooms') }}"
  no_log: true

- name: List rooms with the admin API
  ansible.builtin.uri:
    url: "{{ matrix_homeserver_url }}/_synapse/admin/v1/rooms"
    headers:
      Authorization: "Bearer {{ matrix_token }}"
  register: rooms

- name: The whole lease (homeserver and user come with it)
  ansible.builtin.set_fact:
    matrix: "{{ lookup('mxtoken.broker.mxtoken', details=true) }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: The access token, or with I(details) a dict with token, lease_id, expires_at, homeserver and user_id.
  type: list
  elements: raw
"""

import json
import multiprocessing
import os
import subprocess

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase
from ansible.utils.unsafe_proxy import wrap_var


def playbook_pid():
    """The pid of the ansible-playbook process.

    Lookups run in a worker process that ansible-playbook forks for each task
    and that exits when the task ends: binding the lease to the worker would
    revoke the token before the next task. The worker's multiprocessing parent
    is the controller itself.
    """
    parent = multiprocessing.parent_process()
    if parent is not None and parent.pid:
        return parent.pid
    return os.getpid()


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if terms:
            raise AnsibleError(
                "the mxtoken lookup takes no terms, only options such as profile=, ttl=, purpose="
            )
        cmd = [self.get_option("executable")]
        if self.get_option("socket"):
            cmd += ["--socket", self.get_option("socket")]
        cmd += ["get", "--json"]
        for opt in ("profile", "ttl", "purpose"):
            value = self.get_option(opt)
            if value:
                cmd += ["--" + opt, str(value)]
        pid = self.get_option("bind_pid")
        if pid is None and self.get_option("bind"):
            pid = playbook_pid()
        if pid is not None:
            cmd += ["--bind-pid", str(int(pid))]
        if self.get_option("wait"):
            cmd.append("--wait")
        try:
            proc = subprocess.run(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                check=False,
            )
        except OSError as e:
            raise AnsibleError(
                "cannot run %s (%s); install mxtoken or set the executable option" % (cmd[0], e.strerror)
            ) from None
        if proc.returncode != 0:
            # mxtoken's stderr is one sentence and never holds a token.
            message = proc.stderr.decode("utf-8", "replace").strip() or "no message"
            raise AnsibleError(
                "mxtoken get failed with exit code %d: %s" % (proc.returncode, message)
            )
        try:
            lease = json.loads(proc.stdout)
            token = lease["token"]
        except (ValueError, KeyError, TypeError):
            # Do not echo stdout: it may hold a token.
            raise AnsibleError("mxtoken get --json printed something that is not a lease") from None
        if self.get_option("details"):
            return [wrap_var(lease)]
        return [wrap_var(token)]
