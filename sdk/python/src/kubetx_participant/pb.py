"""The generated protobuf messages and gRPC stubs (hack/python-gen.sh), under short names.

    from kubetx_participant.pb import participant_pb2, participant_pb2_grpc, hook_pb2, hook_pb2_grpc
"""

from kubetx_participant._gen.kubetx.conformance.v1 import hook_pb2, hook_pb2_grpc
from kubetx_participant._gen.kubetx.v1 import participant_pb2, participant_pb2_grpc

__all__ = ["hook_pb2", "hook_pb2_grpc", "participant_pb2", "participant_pb2_grpc"]
