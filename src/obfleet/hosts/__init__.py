"""Talking to managed hosts.

`ssh` is the only way obfleet reaches a host: one pooled asyncssh connection per host, host keys
pinned at first contact, commands with timeouts that really stop the remote process, verified
file uploads, and logging with secrets redacted. `shell` builds the command strings safely.
Subtasks use these and never asyncssh directly, so a fake can stand in where a test needs one.
"""
