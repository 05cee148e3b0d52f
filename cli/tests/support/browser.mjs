// One page in Debian's chromium (playwright-core, headless), for the review page's browser
// tests: `check(page, fail, seen)` drives it; then no dialog may have fired and no request may
// have left the page's own host. Prints what it saw as one JSON line; exits 1 on any failure.
import { chromium } from 'playwright-core'

export async function inChromium(url, { headers } = {}, check) {
  const origin = new URL(url).origin
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  })
  const seen = { dialogs: 0, foreign: [], failures: [] }
  const fail = (m) => seen.failures.push(m)
  try {
    const context = await browser.newContext(headers ? { extraHTTPHeaders: headers } : {})
    const page = await context.newPage()
    page.on('dialog', async (d) => { seen.dialogs++; await d.dismiss() })
    page.on('request', (r) => { if (!r.url().startsWith(origin)) seen.foreign.push(r.url()) })
    await page.goto(url)
    await check(page, fail, seen)
    await page.waitForTimeout(200)
  } catch (e) {
    fail(String(e))
  } finally {
    await browser.close()
  }
  if (seen.dialogs) fail(`${seen.dialogs} dialog(s) fired`)
  if (seen.foreign.length) fail('requests to other hosts: ' + seen.foreign.join(', '))
  console.log(JSON.stringify(seen))
  process.exit(seen.failures.length ? 1 : 0)
}
