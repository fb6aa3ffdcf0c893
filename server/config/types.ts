import { z } from 'zod';

/** Comma-separated list from the environment, or a real list from the config file. */
export const list = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
  z.array(z.string()),
);

/** true/false, also written 1/0, yes/no, on/off in the environment. */
export const bool = z.preprocess((v) => {
  if (typeof v !== 'string') return v;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  return v;
}, z.boolean());

/** A whole number in [min, max], from a number or a numeric string. */
export const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** JSON text from the environment, or the value itself from the config file. */
export const json = <T extends z.ZodTypeAny>(schema: T) =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      return v;
    }
  }, schema);
