import path from 'node:path';
import compression from 'compression';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { Errors } from '@atelier/kit';

/**
 * The console (console/, a Vite-built single-page app) at /console. Its hashed assets are cached
 * for good; index.html never is, so a new build is picked up on the next load. Any other path
 * under /console is one of the app's own screens and gets index.html; without a build (`make
 * console`) they are 404s. Compressed when the browser accepts it: the bundle is about a third of
 * its size in gzip, which is most of a phone's first load.
 */
export function serveConsole(app: Express, dir: string) {
  app.use(
    '/console',
    compression(),
    express.static(dir, {
      index: false,
      setHeaders: (res, file) => {
        res.setHeader(
          'Cache-Control',
          file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache',
        );
      },
    }),
  );
  app.get('/console{/*screen}', (req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.sendFile('index.html', { root: dir }, (err) => {
      if (err) next(Errors.notFound('page', req.path));
    });
  });
}
