import { InputError } from '../errors.js';

/**
 * Cron expressions in the dialect of the Rust `cron` crate 0.12, which the original uses (docs/compatibility.md#scheduling):
 * `sec min hour day-of-month month day-of-week [year]`, evaluated in UTC, Sunday = 1.
 *
 * @remarks The grammar mirrors the crate's parser combinators, whitespace quirks included (see
 * docs/adr/0003-scheduler.md): every expression the crate accepts is accepted here with the same
 * meaning, and the crate's refusals are refused with a message that names the field and the value.
 */

/** A parsed cron expression. */
export interface CronSchedule {
  /** the expression as given */
  readonly source: string;
  /**
   * The first instant strictly after `after` that the expression matches, in whole seconds, or
   * undefined when there is none (the crate's years end at 2100; `30 2` never happens).
   */
  next(after: Date): Date | undefined;
  /** Whether `date` (taken at whole-second precision, in UTC) matches the expression. */
  includes(date: Date): boolean;
}

/** The field names, in expression order, as messages use them. */
export const CRON_FIELDS = [
  'seconds',
  'minutes',
  'hours',
  'day-of-month',
  'month',
  'day-of-week',
  'year',
] as const;
/** One of {@link CRON_FIELDS}. */
export type CronField = (typeof CRON_FIELDS)[number];

/**
 * Parses a cron expression of the crate's dialect: six or seven fields (seconds first, an optional
 * year last), each a comma-separated list of `*`, a number, a name (months, days of the week), a
 * range `a-b`, or a step `*\/n`, `a-b/n`, `a/n`; `?` means `*` in the day fields; or one of
 * `@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`.
 *
 * @throws InputError saying which field and value are wrong (five fields: "you probably forgot the
 * seconds").
 */
export function parseCron(expression: string): CronSchedule {
  const sets = parseShorthand(expression) ?? parseLonghand(expression);
  return new Schedule(expression, sets);
}

// --- FIELDS ---

interface FieldSpec {
  name: CronField;
  min: number;
  max: number;
  /** lowercased names → values; absent for fields without names */
  names?: Readonly<Record<string, number>>;
  /** the field accepts `?` for `*` */
  any: boolean;
}

// The crate's tables (time_unit/months.rs, days_of_week.rs): no `sept`, but `tues` and `thurs`.
const MONTH_NAMES: Readonly<Record<string, number>> = {
  jan: 1,
  january: 1,
  feb: 2,
  february: 2,
  mar: 3,
  march: 3,
  apr: 4,
  april: 4,
  may: 5,
  jun: 6,
  june: 6,
  jul: 7,
  july: 7,
  aug: 8,
  august: 8,
  sep: 9,
  september: 9,
  oct: 10,
  october: 10,
  nov: 11,
  november: 11,
  dec: 12,
  december: 12,
};

const DAY_NAMES: Readonly<Record<string, number>> = {
  sun: 1,
  sunday: 1,
  mon: 2,
  monday: 2,
  tue: 3,
  tues: 3,
  tuesday: 3,
  wed: 4,
  wednesday: 4,
  thu: 5,
  thurs: 5,
  thursday: 5,
  fri: 6,
  friday: 6,
  sat: 7,
  saturday: 7,
};

const FIELDS: readonly FieldSpec[] = [
  { name: 'seconds', min: 0, max: 59, any: false },
  { name: 'minutes', min: 0, max: 59, any: false },
  { name: 'hours', min: 0, max: 23, any: false },
  { name: 'day-of-month', min: 1, max: 31, any: true },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES, any: false },
  { name: 'day-of-week', min: 1, max: 7, names: DAY_NAMES, any: true },
  { name: 'year', min: 1970, max: 2100, any: false },
];

/** The allowed values of each field, sorted ascending, in {@link CRON_FIELDS} order. */
type FieldSets = readonly (readonly number[])[];

function full(spec: FieldSpec): number[] {
  return Array.from({ length: spec.max - spec.min + 1 }, (_, i) => spec.min + i);
}

// --- GRAMMAR ---
// One function per combinator of the crate's nom parser (parsing.rs). Only numbers and names swallow
// the whitespace around them, as `delimited(multispace0, digit1, multispace0)` does: `1 , 2` is one
// list and `1 - 5` one range, while `* ,5` and `1, *` are refused.

type Specifier =
  | { kind: 'all' }
  | { kind: 'point'; value: number }
  | { kind: 'range'; start: number; end: number }
  | { kind: 'named-range'; start: string; end: string };

type RootSpecifier =
  | Specifier
  | { kind: 'period'; base: Specifier; step: number }
  | { kind: 'named'; name: string };

interface Parsed<T> {
  value: T;
  end: number;
}

const U32_MAX = 0xffff_ffff;

function isSpace(char: string | undefined): boolean {
  return char === ' ' || char === '\t' || char === '\r' || char === '\n';
}

function skipSpace(text: string, at: number): number {
  let i = at;
  while (isSpace(text[i])) i++;
  return i;
}

function token(text: string, at: number, test: (char: string) => boolean): Parsed<string> | undefined {
  const start = skipSpace(text, at);
  let i = start;
  while (i < text.length && test(text[i] as string)) i++;
  if (i === start) return undefined;
  return { value: text.slice(start, i), end: skipSpace(text, i) };
}

const isDigit = (char: string) => char >= '0' && char <= '9';
const isAlpha = (char: string) => (char >= 'a' && char <= 'z') || (char >= 'A' && char <= 'Z');

function ordinal(text: string, at: number): Parsed<number> | undefined {
  const digits = token(text, at, isDigit);
  if (!digits) return undefined;
  const value = Number(digits.value);
  // u32::from_str fails on overflow, which makes the combinator fail
  return value > U32_MAX ? undefined : { value, end: digits.end };
}

function specifier(text: string, at: number, any: boolean): Parsed<Specifier> | undefined {
  if (text[at] === '*' || (any && text[at] === '?')) return { value: { kind: 'all' }, end: at + 1 };
  const start = ordinal(text, at);
  if (start) {
    if (text[start.end] === '-') {
      const end = ordinal(text, start.end + 1);
      if (end) return { value: { kind: 'range', start: start.value, end: end.value }, end: end.end };
    }
    return { value: { kind: 'point', value: start.value }, end: start.end };
  }
  const first = token(text, at, isAlpha);
  if (first && text[first.end] === '-') {
    const last = token(text, first.end + 1, isAlpha);
    if (last) return { value: { kind: 'named-range', start: first.value, end: last.value }, end: last.end };
  }
  return undefined;
}

function rootSpecifier(text: string, at: number, any: boolean): Parsed<RootSpecifier> | undefined {
  const base = specifier(text, at, any);
  if (base && text[base.end] === '/') {
    const step = ordinal(text, base.end + 1);
    if (step) return { value: { kind: 'period', base: base.value, step: step.value }, end: step.end };
  }
  if (base) return base;
  const name = token(text, at, isAlpha);
  return name && { value: { kind: 'named', name: name.value }, end: name.end };
}

function field(text: string, at: number, any: boolean): Parsed<RootSpecifier[]> | undefined {
  const first = rootSpecifier(text, skipSpace(text, at), any);
  if (!first) return undefined;
  const list = [first.value];
  let end = first.end;
  // separated_list1: a separator not followed by an item is left unconsumed
  while (text[end] === ',') {
    const item = rootSpecifier(text, end + 1, any);
    if (!item) break;
    list.push(item.value);
    end = item.end;
  }
  return { value: list, end: skipSpace(text, end) };
}

// --- EXPRESSIONS ---

const SHORTHANDS: readonly [string, string][] = [
  ['@yearly', '0 0 0 1 1 *'],
  ['@monthly', '0 0 0 1 * *'],
  ['@weekly', '0 0 0 * * 1'],
  ['@daily', '0 0 0 * * *'],
  ['@hourly', '0 0 * * * *'],
];

function parseShorthand(expression: string): FieldSets | undefined {
  const start = skipSpace(expression, 0);
  if (expression[start] !== '@') return undefined;
  for (const [keyword, equivalent] of SHORTHANDS) {
    if (!expression.startsWith(keyword, start)) continue;
    const rest = expression.slice(skipSpace(expression, start + keyword.length));
    if (rest !== '') fail(expression, `unexpected '${rest}' after ${keyword}`);
    return parseLonghand(equivalent);
  }
  const word = expression.slice(start).split(/\s/, 1)[0];
  return fail(
    expression,
    `unknown shorthand '${word}' (known: ${SHORTHANDS.map(([keyword]) => keyword).join(', ')})`,
  );
}

function parseLonghand(expression: string): FieldSets {
  const lists: RootSpecifier[][] = [];
  let at = 0;
  for (const spec of FIELDS) {
    const parsed = field(expression, at, spec.any);
    if (!parsed) {
      if (lists.length === 6 && at >= expression.length) break;
      syntaxError(expression, at, lists.length);
    }
    lists.push(parsed.value);
    at = parsed.end;
  }
  if (at < expression.length) syntaxError(expression, at, lists.length);
  if (lists.length === 6) lists.push([{ kind: 'all' }]);
  return lists.map((list, index) => fieldValues(expression, FIELDS[index] as FieldSpec, list));
}

/** Explains why the fields could not be read: how many there are, or which field stops where. */
function syntaxError(expression: string, at: number, index: number): never {
  const rest = expression.slice(skipSpace(expression, at)).trim();
  const words = expression.trim() === '' ? 0 : expression.trim().split(/\s+/).length;
  const count = rest === '' ? index : words;
  const shape = '(sec min hour day-of-month month day-of-week [year])';
  if (count < 6) {
    const hint = count === 5 ? '; you probably forgot the seconds' : '';
    return fail(
      expression,
      `it has ${count} field${count === 1 ? '' : 's'}, expected 6 or 7 ${shape}${hint}`,
    );
  }
  // a field that stopped inside a word is the culprit, not the next one
  const inside = at > 0 && !isSpace(expression[at - 1]);
  if (!inside && count > 7) return fail(expression, `it has ${count} fields, expected 6 or 7 ${shape}`);
  if (!inside && index === 7) return fail(expression, `unexpected '${rest}' after the year field`);
  let start = skipSpace(expression, at);
  if (inside) while (start > 0 && !isSpace(expression[start - 1])) start--;
  const value = expression.slice(start).split(/\s/, 1)[0] ?? '';
  const culprit = inside ? index - 1 : index;
  return fail(expression, `cannot parse the ${CRON_FIELDS[culprit]} field at '${value}'`);
}

/** The crate's `from_field`: a lone `*` is everything, otherwise the union of the items, validated. */
function fieldValues(expression: string, spec: FieldSpec, list: readonly RootSpecifier[]): number[] {
  if (list.length === 1 && list[0]?.kind === 'all') return full(spec);
  const values = new Set<number>();
  for (const item of list) for (const value of itemValues(expression, spec, item)) values.add(value);
  return [...values].sort((a, b) => a - b);
}

function itemValues(expression: string, spec: FieldSpec, item: RootSpecifier): number[] {
  const where = `the ${spec.name} field`;
  const check = (value: number): number => {
    if (value < spec.min || value > spec.max) {
      const hint = spec.name === 'day-of-week' ? ' (Sunday = 1)' : '';
      fail(expression, `${where}: ${value} is out of range ${spec.min}-${spec.max}${hint}`);
    }
    return value;
  };
  const named = (name: string): number => {
    if (!spec.names) return fail(expression, `${where} does not accept names ('${name}')`);
    const value = spec.names[name.toLowerCase()];
    if (value === undefined) {
      const kind = spec.name === 'month' ? 'a month' : 'a day of the week';
      return fail(expression, `${where}: '${name}' is not ${kind}`);
    }
    return value;
  };
  const range = (start: number, end: number, text: string): number[] => {
    check(start);
    check(end);
    if (start > end) fail(expression, `${where}: range ${text} ends before it starts`);
    return Array.from({ length: end - start + 1 }, (_, i) => start + i);
  };
  const base = (value: Specifier): number[] => {
    switch (value.kind) {
      case 'all':
        return full(spec);
      case 'point':
        return [check(value.value)];
      case 'range':
        return range(value.start, value.end, `${value.start}-${value.end}`);
      case 'named-range':
        return range(named(value.start), named(value.end), `${value.start}-${value.end}`);
    }
  };
  switch (item.kind) {
    case 'named':
      return [named(item.name)];
    case 'period': {
      // Beyond the crate, whose `step_by(0)` has no meaning: a zero step is refused.
      if (item.step === 0) fail(expression, `${where}: a step must be at least 1`);
      // `a/n` runs from a to the field's maximum; other bases are stepped through as they are
      const values = item.base.kind === 'point' ? range(item.base.value, spec.max, '') : base(item.base);
      return values.filter((_, index) => index % item.step === 0);
    }
    default:
      return base(item);
  }
}

function fail(expression: string, detail: string): never {
  throw new InputError(`invalid cron expression '${expression}': ${detail}`);
}

// --- EVALUATION ---

const SECOND = 1000;

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Sunday = 1 … Saturday = 7, as the crate's `number_from_sunday`. */
function dayOfWeek(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay() + 1;
}

class Schedule implements CronSchedule {
  private readonly seconds: readonly number[];
  private readonly minutes: readonly number[];
  private readonly hours: readonly number[];
  private readonly days: readonly number[];
  private readonly months: readonly number[];
  private readonly weekdays: ReadonlySet<number>;
  private readonly years: readonly number[];

  constructor(
    readonly source: string,
    sets: FieldSets,
  ) {
    const at = (index: number): readonly number[] => sets[index] ?? [];
    this.seconds = at(0);
    this.minutes = at(1);
    this.hours = at(2);
    this.days = at(3);
    this.months = at(4);
    this.weekdays = new Set(at(5));
    this.years = at(6);
  }

  next(after: Date): Date | undefined {
    const time = after.getTime();
    if (Number.isNaN(time)) throw new RangeError('invalid date');
    // the first candidate is the next whole second, as the crate's `after + 1s` with its nanos dropped
    const from = new Date(Math.floor(time / SECOND) * SECOND + SECOND);
    const year0 = from.getUTCFullYear();
    const month0 = from.getUTCMonth() + 1;
    const day0 = from.getUTCDate();
    const hour0 = from.getUTCHours();
    const minute0 = from.getUTCMinutes();
    const second0 = from.getUTCSeconds();

    // A unit starts at the candidate's value while every larger unit still equals the candidate's,
    // and at its minimum once a larger unit has moved past it.
    for (const year of this.years) {
      if (year < year0) continue;
      const sameYear = year === year0;
      for (const month of this.months) {
        if (sameYear && month < month0) continue;
        const sameMonth = sameYear && month === month0;
        const last = daysInMonth(year, month);
        for (const day of this.days) {
          if (day > last) break;
          if (sameMonth && day < day0) continue;
          // both day fields must match (AND), as in the crate, unlike Vixie cron's OR
          if (!this.weekdays.has(dayOfWeek(year, month, day))) continue;
          const sameDay = sameMonth && day === day0;
          for (const hour of this.hours) {
            if (sameDay && hour < hour0) continue;
            const sameHour = sameDay && hour === hour0;
            for (const minute of this.minutes) {
              if (sameHour && minute < minute0) continue;
              const sameMinute = sameHour && minute === minute0;
              for (const second of this.seconds) {
                if (sameMinute && second < second0) continue;
                return new Date(Date.UTC(year, month - 1, day, hour, minute, second));
              }
            }
          }
        }
      }
    }
    return undefined;
  }

  includes(date: Date): boolean {
    return (
      this.years.includes(date.getUTCFullYear()) &&
      this.months.includes(date.getUTCMonth() + 1) &&
      this.days.includes(date.getUTCDate()) &&
      this.weekdays.has(date.getUTCDay() + 1) &&
      this.hours.includes(date.getUTCHours()) &&
      this.minutes.includes(date.getUTCMinutes()) &&
      this.seconds.includes(date.getUTCSeconds())
    );
  }

  toString(): string {
    return this.source;
  }
}
