#!/usr/bin/env python3
"""Writes the fuzzers' seeds that come from the real test stack: what Postfix and Dovecot say to
the dialogs the probes hold, one file per conversation.

Usage: tests/fuzz/capture_seeds.py STACK_DIR   (a stack started by tests/stack/mailstack.sh)

The dialog seeds (smtp_dialog, imap_dialog) start with the byte that chooses the dialog's options
(tests/fuzz/*_entries.cpp) and separate what the server sent after each command with 0xff;
the parser seeds (smtp_reply, imap_response) are the same bytes joined."""
import pathlib
import socket
import ssl
import sys
import time

SEPARATOR = b"\xff"
FUZZ_DIR = pathlib.Path(__file__).resolve().parent


def read_env(stack_dir):
    env = {}
    for line in (pathlib.Path(stack_dir) / "stack.env").read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value
    return env


class Conversation:
    def __init__(self, env, port):
        self.env = env
        self.sock = socket.create_connection((env["MAILSTACK_HOST"], port), timeout=10)
        self.chunks = []

    def tls(self):
        context = ssl.create_default_context(cafile=self.env["MAILSTACK_CA_FILE"])
        self.sock = context.wrap_socket(self.sock,
                                        server_hostname=self.env["MAILSTACK_TLS_SERVER_NAME"])

    def read_until(self, done):
        data = b""
        while not done(data):
            more = self.sock.recv(65536)
            if not more:
                break
            data += more
        self.chunks.append(data)
        return data

    def say(self, line, done):
        if line is not None:
            self.sock.sendall(line.encode() + b"\r\n")
        return self.read_until(done)


def smtp_replies(count):
    """Done once `count` replies (final lines "NNN ") are in."""
    def done(data):
        return sum(1 for line in data.split(b"\r\n") if len(line) >= 4 and line[3:4] == b" ") >= count
    return done


def imap_tagged(tag):
    return lambda data: (b"\r\n" + tag.encode() + b" ") in (b"\r\n" + data)


def imap_untagged_line(data):
    return data.endswith(b"\r\n")


def write_seed(target, name, data):
    path = FUZZ_DIR / target / name
    path.write_bytes(data)
    print(f"{path.relative_to(FUZZ_DIR)}: {len(data)} bytes")


def smtp_submission(env, password):
    """Port 587: STARTTLS, AUTH PLAIN, MAIL and two RCPTs pipelined, DATA, the message, QUIT."""
    c = Conversation(env, int(env["MAILSTACK_SUBMISSION_PORT"]))
    c.read_until(smtp_replies(1))
    c.say("EHLO probe.example.test", smtp_replies(1))
    c.say("STARTTLS", smtp_replies(1))
    c.tls()
    c.say("EHLO probe.example.test", smtp_replies(1))
    import base64
    plain = base64.b64encode(b"\0" + env["MAILSTACK_USER"].encode() + b"\0" + password.encode())
    c.say("AUTH PLAIN " + plain.decode(), smtp_replies(1))
    c.sock.sendall(f"MAIL FROM:<{env['MAILSTACK_USER']}>\r\nRCPT TO:<{env['MAILSTACK_USER']}>\r\n"
                   f"RCPT TO:<{env['MAILSTACK_EXCHANGE_USER']}>\r\n".encode())
    c.read_until(smtp_replies(3))
    c.say("DATA", smtp_replies(1))
    c.say("Subject: fuzz seed\r\nX-Mailcanary-Token: seed\r\n\r\nseed\r\n.", smtp_replies(1))
    c.say("QUIT", smtp_replies(1))
    return c.chunks


def smtp_refused(env):
    """Port 25, no TLS: a recipient refused (550), then QUIT."""
    c = Conversation(env, int(env["MAILSTACK_SMTP_PORT"]))
    c.read_until(smtp_replies(1))
    c.say("EHLO probe.example.test", smtp_replies(1))
    c.sock.sendall(f"MAIL FROM:<{env['MAILSTACK_USER']}>\r\nRCPT TO:<nobody@example.test>\r\n"
                   f"RCPT TO:<{env['MAILSTACK_REFUSED_RCPT']}>\r\n".encode())
    c.read_until(smtp_replies(3))
    c.say("QUIT", smtp_replies(1))
    return c.chunks


def imap_session(env, password, starttls):
    """Login, SELECT, IDLE, FETCH of the token header (a literal), SEARCH, LOGOUT, tagged as the
    client tags them."""
    port = env["MAILSTACK_IMAP_PORT"] if starttls else env["MAILSTACK_IMAPS_PORT"]
    c = Conversation(env, int(port))
    if not starttls:
        c.tls()
    c.read_until(imap_untagged_line)
    tag = 0

    def command(text):
        nonlocal tag
        tag += 1
        return c.say(f"C{tag} {text}", imap_tagged(f"C{tag}"))

    if starttls:
        command("STARTTLS")
        c.tls()
    command(f'LOGIN "{env["MAILSTACK_USER"]}" "{password}"')
    command("SELECT INBOX")
    tag += 1
    c.say(f"C{tag} IDLE", imap_untagged_line)
    c.say("DONE", imap_tagged(f"C{tag}"))
    command("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (X-Mailcanary-Token)])")
    command("UID SEARCH ALL")
    # Not a command of the dialog (its own tag keeps the dialog's in step): the header seed.
    header = c.say("H1 UID FETCH 1 (BODY.PEEK[HEADER])", imap_tagged("H1"))
    c.chunks.pop()
    command("LOGOUT")
    return c.chunks, header


def literal_of(response):
    """The first literal's bytes in a FETCH response."""
    start = response.index(b"}\r\n") + 3
    size = int(response[response.rindex(b"{", 0, start) + 1:start - 3])
    return response[start:start + size]


def main():
    env = read_env(sys.argv[1])
    password = pathlib.Path(env["MAILSTACK_PASSWORD_FILE"]).read_text().strip()

    submission = smtp_submission(env, password)
    write_seed("smtp_dialog", "postfix_submission", b"\x15" + SEPARATOR.join(submission))
    write_seed("smtp_reply", "postfix_submission", b"".join(submission))
    refused = smtp_refused(env)
    write_seed("smtp_dialog", "postfix_refused_rcpt", b"\x10" + SEPARATOR.join(refused))
    write_seed("smtp_reply", "postfix_refused_rcpt", b"".join(refused))

    time.sleep(2)  # the message of the submission, delivered over LMTP, is in the mailbox now
    imaps, header = imap_session(env, password, starttls=False)
    write_seed("imap_dialog", "dovecot_imaps", b"\x02" + SEPARATOR.join(imaps))
    write_seed("imap_response", "dovecot_imaps", b"".join(imaps))
    imap, _ = imap_session(env, password, starttls=True)
    write_seed("imap_dialog", "dovecot_starttls", b"\x01" + SEPARATOR.join(imap))
    write_seed("mail_headers", "postfix_dovecot_delivered", literal_of(header))


if __name__ == "__main__":
    main()
