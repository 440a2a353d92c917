import { runProcess } from '@atelier/kit';
import { startTrainer } from './app';
import { trainerConfigSchema } from './config';

runProcess('trainer', trainerConfigSchema, startTrainer);
