// SuiteQL text literals. SuiteQL has no bind parameters, so every value a query carries is quoted here and only here.
import { TargetError } from '../../post/target.js';

/** Longest value quoted: nothing Accrue looks up by text (numbers, external ids, dates) comes near it. */
export const SUITEQL_TEXT_MAX = 200;

/**
 * A SQL text literal for SuiteQL: single quotes doubled. NUL and every other control character (C0, DEL, C1) are
 * refused, as is a value over SUITEQL_TEXT_MAX characters: nothing Accrue sends needs them.
 */
export function suiteqlText(value: string): string {
  if (/[\u0000-\u001f\u007f-\u009f]/.test(value) || value.length > SUITEQL_TEXT_MAX)
    throw new TargetError(`NetSuite SuiteQL: refusing to quote ${JSON.stringify(value.slice(0, 40))}`, { permanent: true });
  return `'${value.replace(/'/g, "''")}'`;
}
