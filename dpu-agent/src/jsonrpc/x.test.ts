import t from 'tap';
import { x } from './x.ts';
t.equal(x, 1);
