// Fire times and catch-up, with pinned times: no clock, no sleeping.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ScheduleRule } from '../../src/model/schedule.js';
import { planCatchUp } from '../../src/scheduler/catchup.js';
import { nextFireTime, parseRule, upcoming } from '../../src/scheduler/rules.js';

const iso = (ds: Date[]) => ds.map((d) => d.toISOString());
const cron = (expression: string, timezone: string): ScheduleRule => parseRule({ cron: expression, timezone }, 'test');
const anchor = new Date('2020-01-01T00:00:00Z');

describe('cron fire times across daylight-saving changes (2026)', () => {
  it('Europe/Berlin, spring forward on 29 March: 02:30 does not exist, runs at 03:00 that day, once', () => {
    const r = cron('30 2 * * *', 'Europe/Berlin');
    assert.deepEqual(iso(upcoming(r, anchor, new Date('2026-03-28T00:00:00Z'), 3)), [
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST, the first time after the gap
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ]);
  });

  it('Europe/Berlin, fall back on 25 October: 02:30 happens twice but runs once', () => {
    const r = cron('30 2 * * *', 'Europe/Berlin');
    assert.deepEqual(iso(upcoming(r, anchor, new Date('2026-10-24T00:00:00Z'), 3)), [
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
    // A daily 09:00 keeps its wall-clock time on both sides of the change.
    const nine = cron('0 9 * * *', 'Europe/Berlin');
    assert.deepEqual(iso(upcoming(nine, anchor, new Date('2026-10-24T12:00:00Z'), 2)), [
      '2026-10-25T08:00:00.000Z',
      '2026-10-26T08:00:00.000Z',
    ]);
    assert.deepEqual(iso(upcoming(nine, anchor, new Date('2026-03-28T12:00:00Z'), 2)), [
      '2026-03-29T07:00:00.000Z',
      '2026-03-30T07:00:00.000Z',
    ]);
  });

  it('America/New_York, spring forward on 8 March and fall back on 1 November', () => {
    const r = cron('30 2 * * *', 'America/New_York');
    assert.deepEqual(iso(upcoming(r, anchor, new Date('2026-03-07T00:00:00Z'), 3)), [
      '2026-03-07T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:00:00.000Z', // 03:00 EDT (02:30 skipped by the clock)
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
    ]);
    const once = cron('30 1 * * *', 'America/New_York');
    assert.deepEqual(iso(upcoming(once, anchor, new Date('2026-10-31T12:00:00Z'), 3)), [
      '2026-11-01T05:30:00.000Z', // 01:30 EDT; the repeated 01:30 EST does not fire again
      '2026-11-02T06:30:00.000Z',
      '2026-11-03T06:30:00.000Z',
    ]);
    const nine = cron('0 9 * * *', 'America/New_York');
    assert.deepEqual(iso(upcoming(nine, anchor, new Date('2026-03-07T00:00:00Z'), 3)), [
      '2026-03-07T14:00:00.000Z',
      '2026-03-08T13:00:00.000Z',
      '2026-03-09T13:00:00.000Z',
    ]);
  });

  it('accepts 6 fields with seconds', () => {
    const r = cron('*/5 * * * * *', 'UTC');
    assert.equal(nextFireTime(r, anchor, new Date('2026-01-01T00:00:01Z'))?.toISOString(), '2026-01-01T00:00:05.000Z');
  });
});

describe('rule validation names the schedule, the field and the fix', () => {
  it('refuses bad input', () => {
    assert.throws(() => parseRule({ cron: '61 * * * *' }, 'schedule "x"'), /schedule "x": field "cron": invalid expression "61 \* \* \* \*"/);
    assert.throws(() => parseRule({ cron: '* * *' }, 'schedule "x"'), /has 3 fields; use 5/);
    assert.throws(() => parseRule({ cron: '* * * * *', timezone: 'Mars/Base' }, 'schedule "x"'), /unknown time zone "Mars\/Base"/);
    assert.throws(() => parseRule({ every: 'often' }, 'schedule "x"'), /schedule "x": field "every": invalid interval "often"/);
    assert.throws(() => parseRule({ every: '10ms' }, 'schedule "x"'), /at least 1 second/);
    assert.throws(() => parseRule({}, 'schedule "x"'), /exactly one of "every"/);
    assert.throws(() => parseRule({ every: '1m', cron: '* * * * *' }, 'schedule "x"'), /exactly one of/);
  });
  it('counts intervals from the anchor', () => {
    const r = parseRule({ every: '10 minutes' }, 's');
    const a = new Date('2026-01-01T00:00:00Z');
    assert.equal(nextFireTime(r, a, a)?.toISOString(), '2026-01-01T00:10:00.000Z');
    assert.equal(nextFireTime(r, a, new Date('2026-01-01T00:25:00Z'))?.toISOString(), '2026-01-01T00:30:00.000Z');
  });
});

describe('catch-up after an outage', () => {
  // Hourly at :00; the scheduler last served 00:00 and comes back at 05:20: 01:00…05:00 were due.
  const hourly = cron('0 * * * *', 'UTC');
  const last = new Date('2026-06-01T00:00:00Z');
  const back = new Date('2026-06-01T05:20:00Z');

  it('"last" runs only the newest missed occurrence, once, and records the rest as skipped', () => {
    const p = planCatchUp(hourly, anchor, last, back, 'last');
    assert.deepEqual(iso(p.fire), ['2026-06-01T05:00:00.000Z']);
    assert.equal(p.skipped, 4);
    assert.equal(p.servedUntil?.toISOString(), '2026-06-01T05:00:00.000Z');
  });

  it('"none" skips every missed occurrence', () => {
    const p = planCatchUp(hourly, anchor, last, back, 'none');
    assert.deepEqual(p.fire, []);
    assert.equal(p.skipped, 5);
    assert.equal(p.servedUntil?.toISOString(), '2026-06-01T05:00:00.000Z');
    // An occurrence that is merely due now (not missed) still runs.
    const onTime = planCatchUp(hourly, anchor, last, new Date('2026-06-01T01:00:00.050Z'), 'none');
    assert.deepEqual(iso(onTime.fire), ['2026-06-01T01:00:00.000Z']);
  });

  it('"all" runs each missed occurrence, oldest first, capped at 100', () => {
    const p = planCatchUp(hourly, anchor, last, back, 'all');
    assert.deepEqual(iso(p.fire), [1, 2, 3, 4, 5].map((h) => `2026-06-01T0${h}:00:00.000Z`));
    assert.equal(p.skipped, 0);
    const long = planCatchUp(parseRule({ every: '1 minute' }, 's'), last, last, new Date('2026-06-01T05:00:00Z'), 'all');
    assert.equal(long.fire.length, 100);
    assert.equal(long.skipped, 300 - 100);
    assert.equal(long.fire.at(-1)?.toISOString(), '2026-06-01T05:00:00.000Z');
  });

  it('plans nothing when nothing is due', () => {
    const p = planCatchUp(hourly, anchor, back, new Date('2026-06-01T05:59:59Z'), 'last');
    assert.deepEqual(p, { fire: [], skipped: 0, servedUntil: null });
  });
});
