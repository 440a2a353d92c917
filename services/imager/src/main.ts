import { runProcess } from '@atelier/kit';
import { startImager } from './app';
import { imagerConfigSchema } from './config';

runProcess('imager', imagerConfigSchema, startImager);
