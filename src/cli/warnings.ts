/**
 * Warnings raised while tfjs loads (two tfjs-core copies), held until the command ends: printed
 * after a success, folded into the one stderr line of a failure. Imported before tfjs.
 */
import { setDuplicateTfjsReporter } from '../backend/load';

export const heldWarnings: string[] = [];
setDuplicateTfjsReporter((line) => heldWarnings.push(line));
