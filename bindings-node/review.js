// The review page and its API as a Fastify plugin, behind your app's own login:
//
//   const { reviewPlugin } = require('@synapsor/runner-native/review')
//   app.register(reviewPlugin({ runner, reviewer: async (req) => user ? { id, roles, tenantId } : null }),
//                { prefix: '/review' })
//
// Every request without a reviewer gets 401; every approve or reject without the page's CSRF
// token (fetched from api/session) gets 403; a reviewer sees and decides only their tenant's
// proposals. The page never applies a change.
'use strict'
const crypto = require('node:crypto')
const { reviewAssets } = require('./index.js')

function reviewPlugin({ runner, reviewer }) {
  const assets = reviewAssets()
  const csrf = crypto.randomBytes(24).toString('base64url')
  const files = {
    '/': ['text/html; charset=utf-8', assets.indexHtml],
    '/app.js': ['text/javascript; charset=utf-8', assets.appJs],
    '/app.css': ['text/css; charset=utf-8', assets.appCss],
  }
  const secure = (reply) => {
    for (const [k, v] of assets.securityHeaders) reply.header(k, v)
    return reply
  }
  const refuse = (reply, status, code, error) =>
    secure(reply).code(status).type('application/json; charset=utf-8').send({ ok: false, code, error })
  const sameCsrf = (got) => {
    const a = Buffer.from(String(got ?? ''))
    const b = Buffer.from(csrf)
    return a.length === b.length && crypto.timingSafeEqual(a, b)
  }

  return async function review(fastify) {
    // Bodies are read as text here, so a non-object or an oversized body gets the review's own
    // answer rather than the app's parser error.
    fastify.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: assets.maxBodyBytes }, (_req, body, done) => done(null, body))
    fastify.setErrorHandler((err, _req, reply) =>
      err.code === 'FST_ERR_CTP_BODY_TOO_LARGE'
        ? refuse(reply, 413, 'BODY_TOO_LARGE', 'request body too large')
        : refuse(reply, 500, 'INTERNAL', 'the review request failed'),
    )
    const handler = async (req, reply) => {
      const path = '/' + (req.params['*'] ?? '')
      const who = await reviewer(req)
      if (!who) return refuse(reply, 401, 'REVIEWER_REQUIRED', 'sign in to review proposals')
      if (req.method === 'GET' && files[path]) {
        const [type, text] = files[path]
        return secure(reply).type(type).send(text)
      }
      if (req.method === 'GET' && path === '/api/session') {
        return secure(reply).send({ ok: true, csrf, reviewer: who.id, roles: who.roles ?? [], tenant: who.tenantId ?? null })
      }
      let body = null
      if (req.method === 'POST') {
        if (!sameCsrf(req.headers['x-synapsor-csrf'])) {
          return refuse(reply, 403, 'CSRF_REQUIRED', 'CSRF token required for proposal review actions')
        }
        if (typeof req.body === 'string' && req.body.length > 0) {
          try {
            body = JSON.parse(req.body)
          } catch {
            body = []
          }
          if (body === null || typeof body !== 'object' || Array.isArray(body)) {
            return refuse(reply, 400, 'INVALID_BODY', 'request body must be a JSON object')
          }
        }
      }
      const query = Object.fromEntries(Object.entries(req.query ?? {}).map(([k, v]) => [k, String(v)]))
      const r = typeof runner === 'function' ? runner() : runner
      const answer = await r.reviewHandle(
        { method: req.method, path, query, body: body ?? undefined },
        { id: who.id, roles: who.roles ?? [], tenantId: who.tenantId },
      )
      return secure(reply).code(answer.status).type('application/json; charset=utf-8').send(answer.body)
    }
    fastify.route({ method: ['GET', 'POST'], url: '/', handler })
    fastify.route({ method: ['GET', 'POST'], url: '/*', handler })
  }
}

module.exports = { reviewPlugin }
