// The review page. Everything the model or the database produced is set as text (textContent),
// never as HTML. The session token arrives once in the URL, becomes an HttpOnly cookie, and is
// removed from the address bar; the CSRF token comes from api/session and stays in memory.
// Paths are relative, so the page works wherever a host mounts it (`/`, `/review/`).
'use strict';
(function () {
  let csrf = '';
  const $ = (id) => document.getElementById(id);
  const el = (tag, text) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; };
  const show = (v) => (v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v));
  const when = (iso) => { const d = new Date(iso); return isNaN(d) ? show(iso) : d.toLocaleString(); };
  if (location.search.includes('token=')) history.replaceState(null, '', location.pathname);

  async function api(path, body) {
    const opts = body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json', 'x-synapsor-csrf': csrf }, body: JSON.stringify(body) };
    const r = await fetch(path, opts);
    return r.json();
  }

  function dl(target, pairs) {
    target.replaceChildren();
    for (const [k, v] of pairs) { target.append(el('dt', k), el('dd', show(v))); }
  }

  async function list() {
    $('story-view').hidden = true; $('list-view').hidden = false;
    const q = new URLSearchParams({ state: $('state').value, q: $('q').value });
    const r = await api('api/proposals?' + q);
    const body = $('proposals').tBodies[0];
    body.replaceChildren();
    for (const p of r.proposals || []) {
      const tr = el('tr');
      tr.tabIndex = 0;
      for (const v of [p.proposal_id, p.action, p.business_object + ' ' + p.object_id, p.tenant_id, p.state, when(p.created_at)]) tr.append(el('td', v));
      const open = () => story(p.proposal_id);
      tr.addEventListener('click', open);
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(); });
      body.append(tr);
    }
    $('empty').hidden = (r.proposals || []).length > 0;
  }

  async function story(id) {
    const r = await api('api/proposals/' + encodeURIComponent(id));
    if (!r.ok) { $('result').textContent = r.error; return; }
    $('list-view').hidden = true; $('story-view').hidden = false;
    const p = r.proposal;
    $('story-title').textContent = p.action + ' on ' + p.business_object + ' ' + p.object_id;
    $('story-state').textContent = 'Proposal ' + p.proposal_id + ' is ' + p.state + '. Tenant ' + p.tenant_id + ', proposed by ' + show(p.principal) + ' at ' + when(p.created_at) + '.';
    dl($('asked'), [['Patch', r.patch], ['Trusted context', r.trusted_context], ['Source', r.source]]);
    const diff = $('diff').tBodies[0];
    diff.replaceChildren();
    for (const col of Object.keys(r.patch || {})) {
      const tr = el('tr');
      tr.append(el('td', col));
      const b = el('td', show((r.before || {})[col])); b.className = 'before';
      const a = el('td', show((r.after || {})[col])); a.className = 'after';
      tr.append(b, a); diff.append(tr);
    }
    $('evidence').textContent = JSON.stringify(r.evidence, null, 2);
    dl($('guards'), [['Tenant guard', r.guards.tenant], ['Version guard', r.guards.expected_version], ['A write moves the version', r.guards.version_advance ? 'by ' + r.guards.version_advance : '—'], ['Allowed columns', r.guards.allowed_columns], ['Primary key', r.guards.primary_key], ['Idempotency key', r.guards.idempotency_key || 'assigned when the writeback job is created; a retry reuses it'], ['Rows a write may touch', r.guards.affected_row_count_required]]);
    const a = r.approval;
    $('approval').textContent = (a.required_role ? 'Requires the role ' + a.required_role + '. ' : 'No role required. ') +
      'You are ' + a.reviewer + (a.reviewer_roles.length ? ' (' + a.reviewer_roles.join(', ') + ')' : ' (no roles)') + '. ' + (r.applies || '');
    const pending = p.state === 'pending_review';
    $('decide').hidden = !pending;
    $('approve').onclick = () => decide(p.proposal_id, 'approve');
    $('reject').onclick = () => decide(p.proposal_id, 'reject');
    const rc = $('receipts'); rc.replaceChildren();
    for (const x of r.receipts || []) rc.append(el('li', when(x.created_at) + ' — ' + x.status + (x.receipt && x.receipt.safe_error_code ? ' (' + x.receipt.safe_error_code + ')' : '')));
    $('no-receipts').hidden = (r.receipts || []).length > 0;
    const ev = $('events'); ev.replaceChildren();
    for (const e of r.events || []) ev.append(el('li', when(e.created_at) + ' — ' + e.kind + ' by ' + show(e.actor)));
  }

  async function decide(id, how) {
    const r = await api('api/proposals/' + encodeURIComponent(id) + '/' + how, { reason: $('reason').value });
    const out = $('result');
    out.className = r.ok ? '' : 'refused';
    out.textContent = r.ok ? 'Proposal ' + r.proposal.proposal_id + ' is now ' + r.proposal.state + '.' : 'Refused: ' + r.error;
    if (r.ok) { $('reason').value = ''; await story(id); }
  }

  document.addEventListener('DOMContentLoaded', async () => {
    const s = await api('api/session');
    csrf = s.csrf || '';
    $('who').textContent = s.ok ? 'Reviewing as ' + s.reviewer + (s.roles.length ? ' (' + s.roles.join(', ') + ')' : ' (no roles)') + (s.tenant ? ', tenant ' + s.tenant : '') : 'Open the link the ui command printed.';
    $('filters').addEventListener('submit', (e) => { e.preventDefault(); list(); });
    $('back').addEventListener('click', list);
    if (s.ok) await list();
  });
})();
