// Roles: an admin reads and writes; a viewer reads. Routes that change anything use requireAdmin.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { WebError } from '../errors.js';

/** A preHandler: refuses (403) a principal that is not an admin. `web.readOnly` makes everyone a viewer. */
export async function requireAdmin(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
  if (request.principal?.role === 'admin') return;
  throw new WebError(
    403,
    'FORBIDDEN',
    request.principal
      ? `"${request.principal.name}" may only read (role viewer, or web.readOnly is set): an admin can make this change.`
      : 'log in as an admin to make this change.',
  );
}
