"""The console email backend for development: each email printed as a person reads it."""

from django.core.mail.backends.console import EmailBackend as DjangoConsoleBackend


class ReadableConsoleBackend(DjangoConsoleBackend):
    """Prints the headers a reader looks at and the plain-text part as text, instead of the raw
    MIME message (quoted-printable, "=E2=80=A2" for "•", lines cut at 76 characters). The other
    parts (the HTML, attachments) are named with their size; a file drop (``filemail://``) keeps
    the whole message."""

    def write_message(self, message):
        lines = [
            f"From: {message.from_email}",
            f"To: {', '.join(message.to)}",
            *([f"Cc: {', '.join(message.cc)}"] if message.cc else []),
            f"Subject: {message.subject}",
            "",
            message.body.rstrip("\n"),
            "",
        ]
        for content, mimetype in getattr(message, "alternatives", []):
            lines.append(f"[{mimetype} part: {len(content)} characters]")
        for attachment in message.attachments:
            name = getattr(attachment, "filename", None) or "attachment"
            lines.append(f"[attachment: {name}]")
        self.stream.write("\n".join(lines).rstrip("\n") + "\n")
        self.stream.write("-" * 79 + "\n")
