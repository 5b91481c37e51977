"""The control panel as a person uses it, in a real headless Chromium: sign in, find an
invoice, open its journey, read a rejected document's field and rule, retry a failed job,
and be refused another tenant's invoice."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import BrowserContext, Page, expect

Panel = Any  # the `panel` fixture (conftest.py): URL, tokens, tenants, invoices, the toy service

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# `CONTROL_PANEL_SCREENSHOT=docs/images/control-panel-journey.png` refreshes the docs' picture.
SCREENSHOT = os.environ.get("CONTROL_PANEL_SCREENSHOT")


async def sign_in(page: Page, panel: Panel, token: str) -> None:
    await page.context.clear_cookies()
    await page.goto(f"{panel.url}/invoices?lang=en")
    await expect(page).to_have_url(f"{panel.url}/sign-in")
    await page.fill("#token", token)
    await page.click("#sign-in")
    await expect(page.locator("#signed-in")).to_be_visible()


async def test_sign_in_find_an_invoice_and_open_its_journey(
    browser: BrowserContext, panel: Panel
) -> None:
    page = await browser.new_page()
    await page.goto(f"{panel.url}/sign-in")
    await page.fill("#token", "nfcp_not-a-token")
    await page.click("#sign-in")
    await expect(page.locator("#sign-in-error")).to_contain_text("unknown or revoked")

    await sign_in(page, panel, panel.a_token)
    await page.goto(f"{panel.url}/invoices?lang=en")
    # The list fills in by itself as the panel consumes the topics.
    await expect(page.locator("#invoices tr[data-invoice]")).to_have_count(3, timeout=60_000)
    await page.fill("#q", "1001")
    await page.click("#search-button")
    rows = page.locator("#invoices tr[data-invoice]")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Köpare AB")
    await rows.first.locator("a.invoice-link").click()

    await expect(page.locator("#invoice-title")).to_contain_text("Invoice 1001")
    timeline = page.locator("#timeline")
    for step in (
        "Fetched from the source system",
        "Created",
        "Transferred to the factor",
        "Sent",
        "Payment received",
        "Entry written into the ERP",
    ):
        await expect(timeline).to_contain_text(step)
    await expect(timeline).to_contain_text("PEPPOL refused first: the receiver is not in the")
    await expect(page.locator("#archive")).to_contain_text("Archived as number 17")
    await expect(page.locator("#document")).to_contain_text("Konsult")
    await page.close()


async def test_a_rejected_document_names_its_field_and_rule(
    browser: BrowserContext, panel: Panel
) -> None:
    page = await browser.new_page()
    await sign_in(page, panel, panel.a_token)
    await page.click("text=Rejected")
    rows = page.locator("#invoices tr[data-invoice]")
    await expect(rows).to_have_count(1, timeout=30_000)
    await expect(rows.first).to_contain_text("1002")
    await rows.first.locator("a.invoice-link").click()
    await expect(page.locator("#invoice-status")).to_have_text("Rejected")
    errors = page.locator("#errors tr.error-row")
    await expect(errors).to_have_count(2)
    first = errors.nth(0)
    await expect(first.locator("code.field")).to_have_text("Invoice.OrganisationNumber")
    await expect(first.locator("code.rule")).to_have_text("NF-ORGNR")
    await expect(first).to_contain_text("An organisation, VAT or personal number is not valid.")
    await expect(first.locator("td.fix")).to_contain_text("customer register of Fortnox")
    # The same in Swedish, one click away.
    await page.click("a[hreflang=sv]")
    await expect(page.locator("#errors tr.error-row").nth(0).locator("td.fix")).to_contain_text(
        "kundregistret i Fortnox"
    )
    await page.click("a[hreflang=en]")
    await page.close()


async def test_retry_a_failed_job(browser: BrowserContext, panel: Panel) -> None:
    page = await browser.new_page()
    await sign_in(page, panel, panel.a_token)
    await page.goto(f"{panel.url}/problems?lang=en")
    job = page.locator(f'#failed-jobs tr[data-job^="{panel.toy.name}:"]')
    await expect(job).to_be_visible(timeout=60_000)
    await expect(job).to_contain_text("the period 2025-03 is locked")
    await expect(job.locator("td.job-state")).to_have_text("failed")

    panel.toy.refuse = False  # the cause is fixed; now the retry succeeds
    await job.locator("button.retry").click()
    await expect(page.locator("#flash")).to_contain_text(f"Asked {panel.toy.name} to Retry job")
    # The toy service carries the command out and answers; the page shows it by itself.
    await expect(page.locator("#flash-outcome")).to_contain_text("done", timeout=60_000)
    await expect(job.locator("td.job-state")).to_contain_text("Pending again since", timeout=30_000)
    assert await panel.toy.pool.fetchval(
        "SELECT state FROM jobs WHERE job_key = 'payment:1001'"
    ) in (
        "pending",
        "done",
    )

    await page.goto(f"{panel.url}/invoices/{panel.a_invoice}?lang=en")
    timeline = page.locator("#timeline")
    await expect(timeline).to_contain_text("Job failed")
    await expect(timeline).to_contain_text("Job retried", timeout=30_000)
    await expect(page.locator("#errors")).to_contain_text("the period 2025-03 is locked")
    if SCREENSHOT:
        await page.set_viewport_size({"width": 1280, "height": 900})
        await page.screenshot(path=str(Path(SCREENSHOT)), full_page=True)
    await page.close()


async def test_another_tenants_invoice_is_refused(browser: BrowserContext, panel: Panel) -> None:
    page = await browser.new_page()
    await sign_in(page, panel, panel.a_token)
    await page.goto(f"{panel.url}/invoices?lang=en")
    await expect(page.locator("#invoices")).not_to_contain_text("2001")
    response = await page.goto(f"{panel.url}/invoices/{panel.b_invoice}?lang=en")
    assert response is not None
    assert response.status == 404
    await expect(page.locator("#error-message")).to_have_text("There is no such invoice.")
    forbidden = await page.goto(f"{panel.url}/invoices?tenant={panel.b}")
    assert forbidden is not None
    assert forbidden.status == 403
    api = await page.request.get(
        f"{panel.url}/api/v1/invoices/{panel.b_invoice}",
        headers={"Authorization": f"Bearer {panel.a_token}"},
    )
    assert api.status == 404
    own = await page.request.get(
        f"{panel.url}/api/v1/invoices/{panel.b_invoice}",
        headers={"Authorization": f"Bearer {panel.b_token}"},
    )
    assert own.status == 200
    # The other tenant, signed in, sees it; an operator sees both.
    await page.click("#sign-out")
    await sign_in(page, panel, panel.operator_token)
    await page.goto(f"{panel.url}/invoices?lang=en")
    await expect(page.locator("#invoices")).to_contain_text("2001")
    await expect(page.locator("#invoices")).to_contain_text("1001")
    await page.close()
