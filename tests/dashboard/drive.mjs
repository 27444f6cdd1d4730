// Drives the harness page in Debian's headless Chromium (playwright-core, never a downloaded browser):
// waits for the panels, reads what each one shows, clicks a host in the top-hosts table, reads again,
// and writes full-page screenshots. Prints one JSON object (the observations) on stdout.
//
//   node drive.mjs URL HOST SCREENSHOT_BEFORE SCREENSHOT_AFTER
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [url, host, shotBefore, shotAfter] = process.argv.slice(2);
const TIMEOUT = Number(process.env.DRIVE_TIMEOUT_MS || 60000);

// What one panel shows: title, placeholders and messages, chart series, table cells.
function readPanels() {
    return Array.from(document.querySelectorAll('[data-test="viz-item"]')).map((item) => {
        const text = (selector) => Array.from(item.querySelectorAll(selector)).map((e) => e.textContent.trim());
        const svg = item.querySelector('svg.highcharts-root');
        return {
            id: item.getAttribute('data-id'),
            type: item.getAttribute('data-viz-type'),
            title: text('[data-test="viz-title"]').join(' '),
            waitingForInput: item.querySelector('[data-test="viz-waiting-for-input"]') !== null,
            messages: text('[data-test="message"], [data-test="viz-waiting-for-input-message"]'),
            statusIcons: item.querySelectorAll('[data-test="status-icon-container"] svg').length,
            text: item.innerText,
            series: svg
                ? Array.from(svg.querySelectorAll('.highcharts-series')).map((s) => ({
                      name: s.getAttribute('aria-label') || '',
                      paths: s.querySelectorAll('path.highcharts-graph, path.highcharts-area').length,
                      points: s.querySelectorAll('.highcharts-point').length,
                  }))
                : [],
            legend: svg ? Array.from(svg.querySelectorAll('.highcharts-legend-item')).map((e) => e.textContent.trim()) : [],
            canvases: item.querySelectorAll('canvas').length,
            headers: text('[data-test="head-cell"]'),
            rows: Array.from(item.querySelectorAll('[data-test="body"] [data-test="row"]')).map((row) =>
                Array.from(row.querySelectorAll('[data-test="cell"]')).map((c) => c.textContent.trim())
            ),
        };
    });
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'teredo-dashboard-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    viewport: { width: 1500, height: 1700 },
});
const result = { console: [], pageErrors: [], failedRequests: [], timeouts: [] };
// A wait that times out is recorded (the test names it), and the run goes on to its screenshots.
async function waitFor(page, what, fn, arg) {
    try {
        await page.waitForFunction(fn, arg, { timeout: TIMEOUT });
    } catch (error) {
        result.timeouts.push(`${what}: ${error.message.split('\n')[0]}`);
    }
}
try {
    const page = context.pages()[0] || (await context.newPage());
    page.on('console', (message) => {
        if (message.type() === 'error') result.console.push(message.text());
    });
    page.on('pageerror', (error) => result.pageErrors.push(String(error)));
    page.on('response', (response) => {
        if (response.status() >= 400) result.failedRequests.push(`${response.status()} ${response.url()}`);
    });
    await page.goto(url);

    // Loaded: every panel has drawn its results, or says why it has none.
    const settled = () =>
        Array.from(document.querySelectorAll('[data-test="viz-item"]')).every(
            (item) =>
                item.querySelector('svg.highcharts-root .highcharts-series, [data-test="body"] [data-test="row"]') ||
                item.querySelector('[data-test="message"], [data-test="viz-waiting-for-input"]')
        ) && document.querySelectorAll('[data-test="viz-item"]').length > 0;
    await waitFor(page, 'panels loaded', settled, null);
    await page.waitForTimeout(1500); // chart animations
    result.before = await page.evaluate(readPanels);
    await page.screenshot({ path: shotBefore, fullPage: true });

    // Drilldown: click the host's cell in the top-hosts table (paging on until it shows).
    const table = page.locator('[data-test="viz-item"][data-id="viz_top_hosts"]');
    const cell = table.locator('[data-test="body"] [data-test="cell"]', { hasText: new RegExp(`^${host.replace(/\./g, '\\.')}$`) });
    const next = table.locator('[data-test="next"]');
    for (let pageNumber = 0; (await cell.count()) === 0 && pageNumber < 10 && (await next.count()) > 0; pageNumber += 1) {
        await next.click({ timeout: 5000 });
        await page.waitForTimeout(300);
    }
    result.hostFoundInTable = (await cell.count()) > 0;
    if (result.hostFoundInTable) {
        await cell.first().click();
        await waitFor(
            page,
            'per-host panels show the clicked host',
            (h) =>
                ['viz_host_vs_baseline', 'viz_host_episodes'].every((id) => {
                    const item = document.querySelector(`[data-test="viz-item"][data-id="${id}"]`);
                    return item && item.innerText.includes(h) &&
                        item.querySelector('svg.highcharts-root .highcharts-series, [data-test="body"] [data-test="row"], [data-test="message"]');
                }),
            host
        );
        await page.waitForTimeout(1500);
    }
    result.after = await page.evaluate(readPanels);
    result.tokens = await page.evaluate(() => window.__harness.tokens);
    result.requests = await page.evaluate(() => window.__harness.requests);
    await page.screenshot({ path: shotAfter, fullPage: true });
} catch (error) {
    result.error = String(error);
} finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(result));
