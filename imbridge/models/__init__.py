"""Normalized models: what every provider returns, whatever its wire format."""

from imbridge.models.content import Custom, Element, Face, File, Image, Location, Sound, Text, Video
from imbridge.models.conversation import Conversation, ConversationKind
from imbridge.models.group import Group, Member, Role
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
    "Element",
    "Face",
    "File",
    "Gender",
    "Group",
    "Image",
    "Location",
    "LoginCredentials",
    "Member",
    "Message",
    "MessageRef",
    "Page",
    "Profile",
    "Role",
    "SentMessage",
    "Sound",
    "Text",
    "Video",
]
