// upload.js - a real browser uses a writable `portico serve` listing.
//
//   node upload.js URL FILE...
//
// Starts Debian's chromium headless (a fresh --user-data-dir under the
// system temp directory, removed at the end) through playwright-core, opens
// URL (a directory listing), puts the FILEs into the listing's upload form,
// submits it, and waits for the page the form leads to. Then, in that page,
// it downloads each file by following its link in the listing.
//
// Prints one JSON object on stdout:
//   { "landed": URL after the submit, "listed": [names of the listing's links],
//     "files": { name: { "href": link, "status": HTTP status, "b64": body } } }
// and exits 0; any failure prints one line on stderr and exits 1. The
// caller (tests/integration/test_serve_browser.py) judges the result.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const STEP_MS = 30000; // each browser step; the machine may be busy

async function main() {
    const [url, ...files] = process.argv.slice(2);
    if (!url || files.length === 0)
        throw new Error('usage: node upload.js URL FILE...');
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'portico-chromium-'));
    let ctx;
    try {
        ctx = await chromium.launchPersistentContext(profile, {
            executablePath: CHROMIUM,
            headless: true,
            args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
            timeout: STEP_MS,
        });
        const page = ctx.pages()[0] || await ctx.newPage();
        page.setDefaultTimeout(STEP_MS);
        const first = await page.goto(url);
        if (!first || first.status() !== 200)
            throw new Error(`GET ${url}: ${first ? first.status() : 'no response'}`);
        const input = page.locator('form[method="post"][enctype="multipart/form-data"] input[type="file"]');
        if (await input.count() !== 1)
            throw new Error('the listing has no upload form');
        await input.setInputFiles(files);
        await Promise.all([
            page.waitForNavigation({ waitUntil: 'load' }),
            page.locator('form[method="post"] [type="submit"]').click(),
        ]);
        const listed = await page.$$eval('table a', as => as.map(a => a.textContent));
        const out = { landed: page.url(), listed, files: {} };
        for (const f of files) {
            const name = path.basename(f);
            const link = page.locator('table a', { hasText: name }).first();
            if (await link.count() === 0) {
                out.files[name] = null;
                continue;
            }
            const href = await link.evaluate(a => a.href);
            // The browser fetches the file from the page, as a download would.
            const got = await page.evaluate(async (u) => {
                const r = await fetch(u, { cache: 'no-store' });
                const b = new Uint8Array(await r.arrayBuffer());
                let s = '';
                for (let i = 0; i < b.length; i += 0x8000)
                    s += String.fromCharCode.apply(null, b.subarray(i, i + 0x8000));
                return { status: r.status, b64: btoa(s) };
            }, href);
            out.files[name] = { href, status: got.status, b64: got.b64 };
        }
        process.stdout.write(JSON.stringify(out) + '\n');
    } finally {
        if (ctx)
            await ctx.close().catch(() => {});
        fs.rmSync(profile, { recursive: true, force: true });
    }
}

main().then(() => process.exit(0), (e) => {
    process.stderr.write(`upload.js: ${e && e.message ? e.message.split('\n')[0] : e}\n`);
    process.exit(1);
});
