import { InputError } from '../errors';

/** A Keras 3 feature tfjs-layers cannot express. */
export class Keras3Error extends InputError {
  override name = 'Keras3Error';
}
