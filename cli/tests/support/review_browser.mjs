// The review page served by `synapsor-runner ui`, in Debian's chromium:
// node review_browser.mjs <page url with token> <proposal id> <xss text> <expect: refused|approved>
import { inChromium } from './browser.mjs'

const [url, id, xss, expect] = process.argv.slice(2)
await inChromium(url, {}, async (page, fail, seen) => {
  if (page.url().includes('token=')) fail('the token stayed in the address bar')
  const row = page.locator('#proposals tbody tr', { hasText: id })
  await row.waitFor({ timeout: 10000 })
  await row.click()
  await page.locator('#story-view').waitFor({ state: 'visible' })
  const diff = await page.locator('#diff').innerText()
  if (!diff.includes('late_fee_cents')) fail('the diff does not show late_fee_cents: ' + diff)
  if (!diff.includes(xss)) fail('the reason is not shown as its characters: ' + diff)
  if ((await page.locator('#diff img').count()) > 0) fail('the reason became an element')
  const evidence = await page.locator('#evidence').innerText()
  if (!evidence.includes('evidence_bundle_id')) fail('no evidence shown')
  // Rejecting without a reason is refused, visibly.
  await page.click('#reject')
  await page.locator('#result.refused').waitFor({ timeout: 10000 })
  const noReason = await page.locator('#result').innerText()
  if (!/reason/.test(noReason)) fail('reject without a reason: ' + noReason)
  await page.click('#approve')
  if (expect === 'refused') {
    await page.locator('#result.refused', { hasText: 'lacks required role' }).waitFor({ timeout: 10000 })
    seen.result = await page.locator('#result').innerText()
  } else {
    await page.locator('#story-state', { hasText: 'is approved' }).waitFor({ timeout: 10000 })
    seen.result = await page.locator('#story-state').innerText()
  }
})
