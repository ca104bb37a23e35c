// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// niohttpd: the SwiftNIO reference of Benchmarks/http/run.sh: NIOHTTP1's server pipeline
// on an event loop group of one thread per CPU, answering every request as httpd does (a
// 13-byte body; `Connection: close` honoured: the answer, then the channel closes).
//
//   niohttpd --port P
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

final class Responder: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let body = Array("Hello, world!".utf8)

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = unwrapInboundIn(data) else { return }
        let keepAlive = request.isKeepAlive
        var headers = HTTPHeaders([("Content-Length", "13"), ("Content-Type", "text/plain")])
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        let head = HTTPResponseHead(version: request.version, status: .ok, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: Self.body)))), promise: nil)
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        if !keepAlive {
            done.futureResult.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 3, arguments[1] == "--port", let port = Int(arguments[2]) else {
    print("usage: niohttpd --port P")
    exit(64)
}
let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(ChannelOptions.backlog, value: 1024)
    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
            channel.pipeline.addHandler(Responder())
        }
    }
    .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
let channel = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
print("READY")
fflush(nil)
try channel.closeFuture.wait()
