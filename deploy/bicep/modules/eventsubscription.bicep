// Routes the Microsoft Graph partner topic's events to the Service Bus queue.
//
// The partner topic is created by Graph when the first subscription names it in its
// notificationUrl (`tpe-provisioner subscribe`) and must be activated before this deploys.
// Each event arrives as one CloudEvent per message; Event Grid keeps the message id across its
// own redeliveries, which the queue's duplicate detection relies on.

@description('Name of the existing, activated Graph partner topic in this resource group.')
param partnerTopicName string

@description('Resource id of the Service Bus queue to deliver to.')
param queueId string

@description('Event subscription name.')
param name string = 'to-servicebus-queue'

resource partnerTopic 'Microsoft.EventGrid/partnerTopics@2025-02-15' existing = {
  name: partnerTopicName
}

resource toQueue 'Microsoft.EventGrid/partnerTopics/eventSubscriptions@2025-02-15' = {
  parent: partnerTopic
  name: name
  properties: {
    destination: {
      endpointType: 'ServiceBusQueue'
      properties: {
        resourceId: queueId
      }
    }
    eventDeliverySchema: 'CloudEventSchemaV1_0'
    filter: {
      includedEventTypes: [
        'Microsoft.Graph.UserUpdated'
        'Microsoft.Graph.UserDeleted'
        'Microsoft.Graph.GroupUpdated'
        'Microsoft.Graph.GroupDeleted'
        'Microsoft.Graph.SubscriptionReauthorizationRequired'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}
