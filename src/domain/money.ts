// The one module that owns decimal parsing, minor units and every rounding in Accrue.
// Money at rest is { amountMinor: bigint, currency }; rates and quantities are exact decimals.
import { Decimal as DecimalBase } from 'decimal.js';
import { fail, ok, problem, type Result, invariant } from './result.js';

/** Exact decimal with enough precision that no billing computation ever rounds implicitly. */
export const Decimal = DecimalBase.clone({ precision: 200, rounding: DecimalBase.ROUND_HALF_EVEN, toExpNeg: -1000, toExpPos: 1000 });
export type Decimal = DecimalBase;

export type RoundingMode = 'half_up' | 'half_even';
export const ROUNDING_MODES: readonly RoundingMode[] = ['half_up', 'half_even'];

const DECIMAL_PATTERN = /^-?(0|[1-9]\d*)(\.\d+)?$/;
/** Limits (TigerStyle): a decimal string longer than this is refused rather than parsed. */
export const DECIMAL_DIGITS_MAX = 40;
export const UNIT_AMOUNT_SCALE_MAX = 12;

/** Parses a plain decimal string ("12", "-0.5", "0.000137"); no exponent, no NaN, no Infinity, no leading zeros. */
export function parseDecimal(text: unknown, path: string, options: { allowNegative?: boolean; scaleMax?: number } = {}): Result<Decimal> {
  if (typeof text !== 'string') return fail(problem(path, 'not_decimal_string', 'must be a decimal string such as "12.50"'));
  if (!DECIMAL_PATTERN.test(text))
    return fail(problem(path, 'not_decimal', `must be a plain decimal such as "12.50", got ${JSON.stringify(text)}`));
  if (text.replace(/[-.]/g, '').length > DECIMAL_DIGITS_MAX)
    return fail(problem(path, 'too_many_digits', `must have at most ${DECIMAL_DIGITS_MAX} digits`));
  const value = new Decimal(text);
  if (!options.allowNegative && value.isNegative() && !value.isZero()) return fail(problem(path, 'negative', 'must not be negative'));
  if (options.scaleMax !== undefined && value.decimalPlaces() > options.scaleMax) {
    return fail(problem(path, 'too_many_decimals', `must have at most ${options.scaleMax} decimal places`));
  }
  return ok(value);
}

/** Canonical decimal text: no exponent, no trailing zeros ("1.50" -> "1.5", "-0" -> "0"). */
export function decimalText(value: Decimal): string {
  if (value.isZero()) return '0';
  return value.toFixed();
}

/** Decimal text with exactly `scale` places, rounding half-even if needed (for display of quantities). */
export function decimalFixed(value: Decimal, scale: number): string {
  return value.toFixed(scale, Decimal.ROUND_HALF_EVEN);
}

// ---------- currencies ----------

const minorUnitCache = new Map<string, number>();
let knownCurrencies: Set<string> | undefined;

/** ISO 4217 minor units (JPY 0, USD 2, KWD 3), from the ICU data that ships with Node. */
export function minorUnits(currency: string): number {
  const cached = minorUnitCache.get(currency);
  if (cached !== undefined) return cached;
  invariant(isCurrency(currency), `unknown currency ${currency}`);
  const digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits;
  invariant(digits !== undefined, `no minor units for ${currency}`);
  minorUnitCache.set(currency, digits);
  return digits;
}

export function isCurrency(code: unknown): code is string {
  if (typeof code !== 'string' || !/^[A-Z]{3}$/.test(code)) return false;
  knownCurrencies ??= new Set(Intl.supportedValuesOf('currency'));
  return knownCurrencies.has(code);
}

// ---------- money ----------

export interface Money {
  amountMinor: bigint;
  currency: string;
}

function decimalRounding(mode: RoundingMode): DecimalBase.Rounding {
  return mode === 'half_up' ? Decimal.ROUND_HALF_UP : Decimal.ROUND_HALF_EVEN;
}

/** Rounds an exact major-unit amount to the currency's minor unit: the only place amounts are rounded. */
export function roundToMinor(amountMajor: Decimal, currency: string, mode: RoundingMode): bigint {
  const scale = minorUnits(currency);
  const minor = amountMajor.times(new Decimal(10).pow(scale)).toDecimalPlaces(0, decimalRounding(mode));
  return BigInt(minor.toFixed(0));
}

/** Rounds an exact decimal to `scale` places with the given mode (quantities for packages, tax rates). */
export function roundDecimal(value: Decimal, scale: number, mode: RoundingMode | 'up' | 'down'): Decimal {
  const rounding = mode === 'up' ? Decimal.ROUND_CEIL : mode === 'down' ? Decimal.ROUND_FLOOR : decimalRounding(mode);
  return value.toDecimalPlaces(scale, rounding);
}

/** Minor units as an exact major-unit decimal. */
export function minorToMajor(amountMinor: bigint, currency: string): Decimal {
  return new Decimal(amountMinor.toString()).dividedBy(new Decimal(10).pow(minorUnits(currency)));
}

/** Major-unit decimal string with exactly the currency's minor digits: 123450n USD -> "1234.50", 1235n JPY -> "1235". */
export function formatMajor(amountMinor: bigint, currency: string): string {
  const scale = minorUnits(currency);
  const negative = amountMinor < 0n;
  const digits = (negative ? -amountMinor : amountMinor).toString().padStart(scale + 1, '0');
  const whole = scale === 0 ? digits : digits.slice(0, -scale);
  const fraction = scale === 0 ? '' : `.${digits.slice(-scale)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}

/** Parses a major-unit amount ("1234.50") into minor units, refusing more digits than the currency has. */
export function parseMajor(text: unknown, currency: string, path: string, options: { allowNegative?: boolean } = {}): Result<bigint> {
  const parsed = parseDecimal(text, path, { ...options, scaleMax: minorUnits(currency) });
  if (!parsed.ok) return parsed;
  return ok(BigInt(parsed.value.times(new Decimal(10).pow(minorUnits(currency))).toFixed(0)));
}

export const money = (amountMinor: bigint, currency: string): Money => ({ amountMinor, currency });

export function sumMinor(values: Iterable<bigint>): bigint {
  let total = 0n;
  for (const v of values) total += v;
  return total;
}
