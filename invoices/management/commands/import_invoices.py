import os
import sys

from django.core.management.base import BaseCommand, CommandError

from invoices.import_files import FORMATS, NotUtf8Error, import_format_detect, import_text_decode
from invoices.importing import InvoiceImportError, invoices_import


class Command(BaseCommand):
    help = (
        "Import invoices from a CSV file (header: account_id,number,currency,amount_minor,issued_on,"
        "due_on[,description]) or JSON lines with the same keys. Every row is checked first: one bad row "
        "imports nothing. Idempotent on the invoice number. FILE may be - for standard input."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", metavar="FILE", help="path to the file, or - for standard input")
        parser.add_argument(
            "--format",
            dest="fmt",
            choices=FORMATS,
            help="csv or jsonl; by default taken from the extension (.csv, .jsonl, .ndjson, .json), "
            "else from the first character ({ means JSON lines)",
        )
        parser.add_argument("--dry-run", action="store_true", help="check every row and import nothing")

    def handle(self, *args, file, fmt, dry_run, **options):
        label = self._label(file)
        try:
            text = import_text_decode(self._read(file))
            fmt = fmt or import_format_detect(filename="" if file == "-" else file, head=text[:100])
            result = invoices_import(text=text, fmt=fmt, actor_label=f"import: {label}", dry_run=dry_run)
        except InvoiceImportError as exc:
            for error in exc.errors:
                self.stderr.write(str(error))
            if isinstance(exc, NotUtf8Error):
                raise CommandError(f"{label} is not UTF-8 text; nothing was imported.") from None
            raise CommandError(f"{len(exc.errors)} problem(s) in {label}; nothing was imported.") from None
        verb = "Would create" if dry_run else "Created"
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {result.created} invoice(s); {result.already_present} already present."
            )
        )

    @staticmethod
    def _label(file: str) -> str:
        return "standard input" if file == "-" else os.path.basename(file)

    @staticmethod
    def _read(file: str) -> bytes:
        try:
            if file == "-":
                return sys.stdin.buffer.read()
            with open(file, "rb") as handle:
                return handle.read()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from None
