// The admin pages: server-rendered HTML over the client's data, one stylesheet and one small script
// (live updates, selection, JSON checks) under /assets. Registered by the web server after it has
// authenticated the request (request.principal) and set up cookies, CSRF and form bodies.
import type { PagesPlugin } from '../types.js';
import { registerAddTask } from './add.js';
import { registerAssets } from './assets.js';
import { registerDaemon } from './daemon.js';
import { page } from './kit.js';
import { overviewPage } from './overview.js';
import { registerSchedules } from './schedules.js';
import { registerTaskDetail } from './task.js';
import { registerTaskList } from './tasks.js';

const pagesPlugin: PagesPlugin = async (app, { deps }) => {
  registerAssets(app);
  page(app, deps, '/', overviewPage);
  registerTaskList(app, deps);
  registerAddTask(app, deps);
  registerTaskDetail(app, deps);
  registerSchedules(app, deps);
  registerDaemon(app, deps);
};

export default pagesPlugin;
