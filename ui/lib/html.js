// htm bound to preact's h: the tagged template every view renders with (no JSX, no build step).
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);
