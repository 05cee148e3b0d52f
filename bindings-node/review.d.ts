import type { Runner } from './index'

/** Who is reviewing, as your app authenticated them. */
export interface Reviewer {
  id: string
  /** Roles your app verified. */
  roles?: string[]
  /** Only this tenant's proposals are listed, shown and decided. */
  tenantId?: string
}

export interface ReviewPluginOptions {
  /** The runner, or a function returning it (e.g. opened after the plugin is registered). */
  runner: Runner | (() => Runner)
  /** Your login decides: the reviewer for this request, or null (401). */
  reviewer: (request: any) => Reviewer | null | undefined | Promise<Reviewer | null | undefined>
}

/** A Fastify plugin serving the review page and its API; register it with a prefix. */
export function reviewPlugin(options: ReviewPluginOptions): (fastify: any) => Promise<void>
