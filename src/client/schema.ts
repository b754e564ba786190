// A handler's payload schema as JSON Schema, for the add form and the API: through the Standard JSON
// Schema interface (zod 4.2+, valibot, arktype implement it); null when the validator cannot give one.
import type { StandardJSONSchemaV1 } from '@standard-schema/spec';
import type { LoadedHandler } from '../worker/handlers.js';

export function payloadJsonSchema(handler: LoadedHandler): unknown {
  if (!handler.schema) return null;
  const std = handler.schema['~standard'] as Partial<StandardJSONSchemaV1.Props>;
  const converter = std.jsonSchema;
  if (!converter || typeof converter.input !== 'function') return null;
  try {
    // The input side: what a caller of add must send.
    return converter.input({ target: 'draft-2020-12' });
  } catch {
    // Some types (a transform, a date) have no JSON Schema: the form then checks nothing before sending.
    return null;
  }
}
