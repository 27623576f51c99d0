/**
 * Imported first by every entry point (library, CLI, jest matcher): loads @tensorflow/tfjs with
 * its load-time console noise muted, then says in one line if the app had loaded another copy.
 */
import { muted, warnIfDuplicateTfjs } from './load';

const { error } = muted(() => require('@tensorflow/tfjs'));
if (error !== undefined) throw error;
warnIfDuplicateTfjs();
