// Answering a request locally: the one path every stage of the request chain uses to end a request with a local
// reply (src/l7/local-reply.ts has the table and the renderer). It logs one line with the request's id and the reason
// (structured fields, level info), answers through the responder (a stream already answered is reset instead), and
// marks the request done.
import { NGHTTP2_INTERNAL_ERROR } from '../http/http2-codes.js';
import { localReply } from '../local-reply.js';
import type { RequestContext } from '../request-context.js';
import type { DownstreamResponder, LocalReplyReason } from '../request-types.js';

export function replyLocally(req: RequestContext, res: DownstreamResponder, reason: LocalReplyReason, cause: unknown): void {
  if (req.done) return;
  const d = req.downstream;
  const reply = localReply(reason);
  d.log.info({
    event: 'http.local-reply', reason, status: reply.status, requestId: req.requestId, method: d.method, authority: d.authority,
    path: req.head.path, service: req.service, err: cause,
  }, 'local reply');
  req.finish();
  if (res.headersSent) res.reset(NGHTTP2_INTERNAL_ERROR);
  else res.localReply(reply, d.grpc);
}
