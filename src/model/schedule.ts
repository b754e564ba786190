// A recurring schedule: which task it creates, and when (an interval or a cron rule in a time zone).
import type { Json } from './task.js';

/** After downtime: run the last missed occurrence once (default), none of them, or each (capped). */
export const CATCH_UP_POLICIES = ['last', 'none', 'all'] as const;
export type CatchUp = (typeof CATCH_UP_POLICIES)[number];

/** While the previous task of a schedule is WAITING or STARTED: skip the new one (default), or allow it. */
export const OVERLAP_POLICIES = ['skip', 'allow'] as const;
export type Overlap = (typeof OVERLAP_POLICIES)[number];

export type ScheduleRule = { kind: 'every'; everyMs: number } | { kind: 'cron'; expression: string; timezone: string };

/** Where a schedule was defined: the config file (reconciled with it) or the API / CLI / admin page. */
export type ScheduleSource = 'config' | 'api';

export interface ScheduleDefinition {
  name: string;
  task: string;
  payload: Json;
  rule: ScheduleRule;
  catchUp: CatchUp;
  overlap: Overlap;
  enabled: boolean;
  source: ScheduleSource;
}

export interface Schedule extends ScheduleDefinition {
  createdAt: Date;
  updatedAt: Date;
  /** Fire times are counted from here (for `every`); set when the rule changes. */
  anchorAt: Date;
  /** The latest due time already served (fired or skipped); later ones are still to come. */
  lastDueAt: Date | null;
  lastFiredAt: Date | null;
  lastTaskId: number | null;
  lastSkippedAt: Date | null;
  lastSkipReason: string | null;
  skippedCount: number;
}

/** At most this many missed occurrences are run by `catchUp: "all"`; older ones are skipped. */
export const CATCH_UP_ALL_MAX = 100;

/** A due time older than this when the scheduler reaches it counts as missed (downtime), not late. */
export const MISSED_AFTER_MS = 10_000;

export const SCHEDULE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,199}$/;
