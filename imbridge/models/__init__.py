"""Normalized models: what every provider returns, whatever its wire format."""

from imbridge.models.content import Custom, Element, Face, File, Image, Location, Sound, Text, Video
from imbridge.models.conversation import Conversation, ConversationKind
from imbridge.models.delivery import Delivery
from imbridge.models.device import DeviceKind, DeviceSession, Presence, PresenceState
from imbridge.models.group import Group, JoinedGroup, JoinOption, Member, Role
from imbridge.models.message import BatchItem, BatchResult, Message, MessageRef, SentMessage
from imbridge.models.page import Page
from imbridge.models.summary import ConversationSummary
from imbridge.models.user import Gender, LoginCredentials, Profile

__all__ = [
    "BatchItem",
    "BatchResult",
    "Conversation",
    "ConversationKind",
    "ConversationSummary",
    "Custom",
    "Delivery",
    "DeviceKind",
    "DeviceSession",
    "Element",
    "Face",
    "File",
    "Gender",
    "Group",
    "Image",
    "JoinOption",
    "JoinedGroup",
    "Location",
    "LoginCredentials",
    "Member",
    "Message",
    "MessageRef",
    "Page",
    "Presence",
    "PresenceState",
    "Profile",
    "Role",
    "SentMessage",
    "Sound",
    "Text",
    "Video",
]
