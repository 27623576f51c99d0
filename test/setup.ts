// Silences tfjs's one-time "install tfjs-node" banner (tfjs checks IS_TEST before warning).
import * as tf from '@tensorflow/tfjs';

tf.env().set('IS_TEST', true);
